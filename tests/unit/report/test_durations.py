"""How ages read (hodei.durations): one formatter for the reports, the doctor and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hodei.durations import age_since, human_age, ms


@pytest.mark.parametrize(
    "seconds,expected",
    [
        (None, "n/a"),
        (-1.0, "0 ms"),
        (0.85, "850 ms"),
        (3.04, "3.0 s"),
        (12.4, "12 s"),
        (300.0, "5 min"),
        (7200.0, "2.0 h"),
        (259200.0, "3.0 d"),
    ],
)
def test_human_age(seconds: float | None, expected: str) -> None:
    assert human_age(seconds) == expected


def test_age_since_is_the_same_words_followed_by_ago() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert age_since(now - timedelta(seconds=12), now) == "12 s ago"
    assert age_since(now - timedelta(minutes=5), now) == "5 min ago"
    assert age_since(None, now) == "-"


def test_ms() -> None:
    assert ms(0.0123) == "12 ms" and ms(None) == "N/A"
