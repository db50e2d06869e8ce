"""Named queries and fragments in queries.sql (hodei.db.connector.parse_queries)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hodei.db.connector import parse_queries, queries


def test_fragments_are_included_where_named_and_are_not_queries() -> None:
    text = (
        "-- fragment: rows\nr AS (SELECT 1)\n\n"
        "-- name: one\nWITH {{rows}} SELECT * FROM r;\n\n"
        "-- name: two\nSELECT 2;\n"
    )
    assert parse_queries(text) == {"one": "WITH r AS (SELECT 1) SELECT * FROM r", "two": "SELECT 2"}


def test_a_fragment_may_include_another_but_not_itself() -> None:
    text = (
        "-- fragment: inner\ni AS (SELECT 1)\n\n"
        "-- fragment: outer\n{{inner}}, o AS (SELECT * FROM i)\n\n"
        "-- name: one\nWITH {{outer}} SELECT * FROM o;\n"
    )
    assert parse_queries(text) == {
        "one": "WITH i AS (SELECT 1), o AS (SELECT * FROM i) SELECT * FROM o"
    }
    with pytest.raises(ValueError, match="fragment 'loop' includes itself"):
        parse_queries("-- fragment: loop\n{{loop}}\n-- name: one\nSELECT {{loop}};\n")


def test_unknown_fragment_and_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="no fragment named 'nope'"):
        parse_queries("-- name: one\nSELECT {{nope}};\n")
    with pytest.raises(ValueError, match="defined twice"):
        parse_queries("-- name: one\nSELECT 1;\n-- fragment: one\nx\n")


def test_the_shipped_queries_include_their_outbox_rows() -> None:
    shipped = queries()
    for name in (
        "insert_events",
        "queue_job",
        "queue_job_keyed",
        "queue_job_batch",
        "queue_job_batch_keyed",
        "dispatch_jobs",
        "start_jobs_fenced",
        "finish_jobs_fenced",
    ):
        assert "INSERT INTO outbox_events" in shipped[name], name
        assert "{{" not in shipped[name]


def test_every_shipped_query_is_used_by_the_package() -> None:
    """A query nothing runs is dead SQL that still has to be kept in step with the
    schema (log_tail_start was, for several sessions)."""
    package = Path(__file__).resolve().parents[3] / "hodei"
    source = "\n".join(p.read_text("utf-8") for p in package.rglob("*.py"))
    unused = [name for name in queries() if f'"{name}"' not in source]
    assert unused == []


def test_the_retention_statements_are_complete() -> None:
    shipped = queries()
    for kind in ("jobs", "outbox", "workers", "registrations", "submission_keys"):
        for name in (f"prune_{kind}", f"count_{kind}"):
            assert "{{" not in shipped[name], name
        assert "SKIP LOCKED" in shipped[f"prune_{kind}"], kind


def test_no_comment_names_a_parameter() -> None:
    """psycopg reads %(name)s in a comment as a parameter: a comment trailing one query
    (the text before the next marker belongs to it) once made the outbox relay fail."""
    for name, sql in queries().items():
        comments = [line for line in sql.splitlines() if line.lstrip().startswith("--")]
        assert not [c for c in comments if "%(" in c], name
