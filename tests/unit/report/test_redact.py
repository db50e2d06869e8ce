"""Masking passwords in database URLs and in lines of text (hodei.redaction)."""

from __future__ import annotations

import pytest

from hodei.redaction import redact, redact_text


@pytest.mark.parametrize(
    "url,expected",
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        (
            "postgresql://postgres:@/postgres?host=/tmp/x",
            "postgresql://postgres:@/postgres?host=/tmp/x",
        ),
        ("host=h password=pw dbname=d", "host=h password=*** dbname=d"),
        (
            "postgresql://h/db?password=pw&sslmode=require",
            "postgresql://h/db?password=***&sslmode=require",
        ),
        (None, ""),
    ],
)
def test_redact(url: str | None, expected: str) -> None:
    assert redact(url) == expected


def test_redact_text_masks_every_url_in_a_line() -> None:
    line = "cannot connect to postgresql://a:b@c/d, then to postgres://x:y@z/w"
    assert (
        redact_text(line) == "cannot connect to postgresql://a:***@c/d, then to "
        "postgres://x:***@z/w"
    )
