"""`hodei db prune [--dry-run]` as a real process against a test database."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.integration.cli_process import assert_one_line_error, closed_port, hodei

pytestmark = pytest.mark.integration


def add_rows(db_url: str) -> None:
    """Four jobs that finished 10 days ago (two log lines each), one 2 days ago, and a
    registration that never connected, an hour old."""
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO jobs (id, command, state, finished_at, log_seq) "
            "SELECT gen_random_uuid(), '{true}', 'FAILED', now() - d * interval '1 day', 2 "
            "FROM unnest(ARRAY[10, 10, 10, 10, 2]) d"
        )
        conn.execute(
            "INSERT INTO job_logs (job_id, sequence, attempt, line, ts) "
            "SELECT id, s, 1, 'x', now() FROM jobs, generate_series(1, 2) s"
        )
        conn.execute(
            "INSERT INTO workers (id, registered_at) "
            "VALUES (gen_random_uuid(), now() - interval '1 hour')"
        )


def count(db_url: str, table: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


async def test_dry_run_counts_then_prune_deletes(db_url: str) -> None:
    add_rows(db_url)

    dry = await hodei("db", "prune", "--dry-run", "--database-url", db_url)

    assert dry.returncode == 0, str(dry)
    assert dry.stdout.splitlines() == [
        "KIND                                    OLDER THAN  WOULD DELETE",
        "finished jobs (with log lines, events)  7.0 d       4 (8 log lines, 0 events)",
        "published outbox rows                   24.0 h      0",
        "TERMINATED and LOST workers             24.0 h      0 (0 events)",
        "never-connected registrations           10 min      1 (0 events)",
        "idempotency keys past their window      24.0 h      0",
        "dry run: nothing was deleted",
    ]
    assert (count(db_url, "jobs"), count(db_url, "job_logs"), count(db_url, "workers")) == (
        5,
        10,
        1,
    )

    done = await hodei("-o", "json", "db", "prune", "--database-url", db_url)

    assert done.returncode == 0, str(done)
    kinds = {k["kind"]: k for k in json.loads(done.stdout)["kinds"]}
    assert kinds["jobs"] == {
        "kind": "jobs",
        "older_than_seconds": 604800.0,
        "rows": 4,
        "log_lines": 8,
        "events": 0,
    }
    assert kinds["registrations"]["rows"] == 1
    assert (count(db_url, "jobs"), count(db_url, "job_logs"), count(db_url, "workers")) == (
        1,
        2,
        0,
    )


async def test_an_age_flag_overrides_the_setting_and_zero_keeps_a_kind(db_url: str) -> None:
    add_rows(db_url)

    done = await hodei(
        "db", "prune", "--jobs-age", "86400", "--registrations-age", "0", "--database-url", db_url
    )

    assert done.returncode == 0, str(done)
    assert "finished jobs (with log lines, events)  24.0 h      5 (10 log lines" in done.stdout
    assert "never-connected registrations           kept        -" in done.stdout
    assert (count(db_url, "jobs"), count(db_url, "workers")) == (0, 1)


async def test_a_bad_age_or_an_unreachable_database_is_one_line(db_url: str) -> None:
    bad_age = await hodei("db", "prune", "--jobs-age", "-1", "--database-url", db_url)
    assert_one_line_error(bad_age, 2, "retention.jobs_age")

    bad = f"postgresql://postgres:secret@127.0.0.1:{closed_port()}/nope"
    failed = await hodei("db", "prune", "--dry-run", "--database-url", bad)
    assert_one_line_error(failed, 3, "cannot prune the database at")
    assert "secret" not in failed.stderr
