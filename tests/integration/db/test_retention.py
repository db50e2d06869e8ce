"""hodei.db.retention against a real PostgreSQL: what goes, what stays, batches, dry runs
and two pruners at once. Old rows are written with SQL, their times set in the past."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from hodei.db import retention
from hodei.settings import RetentionSettings

pytestmark = pytest.mark.integration

DAY = 86400.0


def settings(**values: Any) -> RetentionSettings:
    return RetentionSettings(**{"batch_pause": 0.0, **values})


def add_job(
    conn: psycopg.Connection[Any],
    state: str = "SUCCEEDED",
    finished_days_ago: float | None = 10,
    lines: int = 2,
    published: bool = True,
) -> uuid.UUID:
    """A job with `lines` log lines and two events, each with its outbox row."""
    job_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO jobs (id, command, state, finished_at, log_seq) VALUES "
        "(%s, '{true}', %s, now() - %s * interval '1 day', %s)",
        (job_id, state, finished_days_ago, lines),
    )
    conn.execute(
        "INSERT INTO job_logs (job_id, sequence, attempt, line, ts) "
        "SELECT %s, s, 1, 'x', now() FROM generate_series(1, %s) s",
        (job_id, lines),
    )
    add_events(conn, job_id, "job", published)
    return job_id


def add_events(
    conn: psycopg.Connection[Any], aggregate_id: uuid.UUID, kind: str, published: bool = True
) -> None:
    conn.execute(
        "WITH ev AS (INSERT INTO domain_events (event_type, aggregate_type, aggregate_id) "
        "SELECT t, %s, %s FROM unnest(ARRAY['Created', 'Changed']) t RETURNING *) "
        "INSERT INTO outbox_events (event_id, topic, aggregate_id, payload, published_at) "
        "SELECT id, 'x', aggregate_id, '{}', "
        "CASE WHEN %s THEN now() - interval '30 days' END FROM ev",
        (kind, aggregate_id, published),
    )


def add_worker(
    conn: psycopg.Connection[Any],
    state: str,
    days_ago: float = 10,
    connected: bool = True,
) -> uuid.UUID:
    worker_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO workers (id, state, registered_at, updated_at, connected_at) VALUES "
        "(%s, %s, now() - %s * interval '1 day', now() - %s * interval '1 day', "
        "CASE WHEN %s THEN now() - %s * interval '1 day' END)",
        (worker_id, state, days_ago, days_ago, connected, days_ago),
    )
    add_events(conn, worker_id, "worker")
    return worker_id


def ids(conn: psycopg.Connection[Any], table: str) -> set[uuid.UUID]:
    return {row[0] for row in conn.execute(f"SELECT id FROM {table}")}


def count(conn: psycopg.Connection[Any], sql: str, *params: Any) -> int:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


async def prune(db_url: str, **values: Any) -> retention.PruneReport:
    dry_run = bool(values.pop("dry_run", False))
    async with await retention.connect(db_url) as conn:
        return await retention.prune(conn, settings(**values), dry_run=dry_run)


async def test_old_finished_jobs_go_with_their_logs_and_events(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        old = {add_job(conn, state) for state in ("SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT")}
        recent = add_job(conn, finished_days_ago=1)
        # Unfinished jobs stay whatever their age.
        active = {add_job(conn, state, finished_days_ago=None) for state in ("PENDING", "RUNNING")}
        conn.execute("UPDATE jobs SET created_at = now() - interval '1 year'")
        conn.execute("INSERT INTO job_queue (job_id) SELECT id FROM jobs WHERE state = 'PENDING'")

    report = await prune(db_url)

    assert report.counts()["jobs"] == 4
    assert report.counts()["jobs.log_lines"] == 8 and report.counts()["jobs.events"] == 8
    with psycopg.connect(db_url) as conn:
        assert ids(conn, "jobs") == {recent, *active}
        kept = [recent, *active]
        assert count(conn, "SELECT count(*) FROM job_logs WHERE job_id <> ALL(%s)", kept) == 0
        assert count(conn, "SELECT count(*) FROM job_logs") == 6
        assert count(conn, "SELECT count(*) FROM domain_events WHERE aggregate_id = ANY(%s)",
                     list(old)) == 0  # fmt: skip
        # Their outbox rows went with the events (ON DELETE CASCADE).
        assert count(conn, "SELECT count(*) FROM outbox_events WHERE aggregate_id = ANY(%s)",
                     list(old)) == 0  # fmt: skip
        assert count(conn, "SELECT count(*) FROM job_queue") == 1


async def test_unpublished_outbox_rows_are_never_deleted(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        # An old finished job whose events the relay has not published yet.
        held = add_job(conn, published=False)
        gone = add_job(conn)
        conn.execute("UPDATE outbox_events SET created_at = now() - interval '1 year'")

    report = await prune(db_url, jobs_age=DAY, outbox_age=1.0)

    assert report.counts()["jobs"] == 1
    with psycopg.connect(db_url) as conn:
        assert ids(conn, "jobs") == {held}
        assert count(conn, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL") == 2
        assert count(conn, "SELECT count(*) FROM outbox_events WHERE published_at IS NOT NULL") == 0
        assert count(conn, "SELECT count(*) FROM job_logs WHERE job_id = %s", gone) == 0


async def test_published_outbox_rows_go_after_their_age(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        job = add_job(conn, state="RUNNING", finished_days_ago=None)
        conn.execute(
            "UPDATE outbox_events SET published_at = now() - interval '1 hour' "
            "WHERE id = (SELECT max(id) FROM outbox_events)"
        )

    report = await prune(db_url, outbox_age=2 * 3600.0)

    assert report.counts()["outbox"] == 1  # 30 days old; the one of an hour ago stays
    with psycopg.connect(db_url) as conn:
        assert count(conn, "SELECT count(*) FROM outbox_events") == 1
        # The events themselves stay with their job.
        assert count(conn, "SELECT count(*) FROM domain_events WHERE aggregate_id = %s", job) == 2


async def test_gone_workers_and_never_connected_registrations_go(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        terminated = add_worker(conn, "TERMINATED")
        lost = add_worker(conn, "LOST")
        ready = add_worker(conn, "READY")
        draining = add_worker(conn, "DRAINING")
        recently_lost = add_worker(conn, "LOST", days_ago=0.1)
        # LOST but still named by a job it was running: kept until that job is settled.
        holding = add_worker(conn, "LOST")
        conn.execute(
            "INSERT INTO jobs (id, command, state, worker_id) VALUES (%s, '{true}', 'RUNNING', %s)",
            (uuid.uuid4(), holding),
        )
        # Registrations without a stream: CREATING, or LOST by the recovery loop since.
        creating = add_worker(conn, "CREATING", days_ago=0.01, connected=False)
        never_lost = add_worker(conn, "LOST", days_ago=0.01, connected=False)
        fresh = add_worker(conn, "CREATING", days_ago=0.0001, connected=False)

    report = await prune(db_url, registrations_age=600.0)

    counts = report.counts()
    assert (counts["workers"], counts["registrations"]) == (2, 2)
    assert counts["workers.events"] == 4 and counts["registrations.events"] == 4
    with psycopg.connect(db_url) as conn:
        assert ids(conn, "workers") == {ready, draining, recently_lost, holding, fresh}
        assert count(conn, "SELECT count(*) FROM domain_events WHERE aggregate_id = ANY(%s)",
                     [terminated, lost, creating, never_lost]) == 0  # fmt: skip


async def test_batches_take_every_old_row_and_an_age_of_zero_keeps_a_kind(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for _ in range(35):
            add_job(conn)
            add_worker(conn, "TERMINATED")

    report = await prune(db_url, batch_size=10, workers_age=0.0)

    jobs, outbox, workers, *_ = report.kinds
    assert (jobs.deleted, jobs.batches) == (35, 4)
    assert (workers.older_than, workers.deleted, workers.batches) == (0.0, 0, 0)
    assert outbox.deleted == 35 * 2  # the workers' events' rows: 30 days since published
    with psycopg.connect(db_url) as conn:
        assert count(conn, "SELECT count(*) FROM jobs") == 0
        assert count(conn, "SELECT count(*) FROM workers") == 35


async def test_a_batch_of_jobs_stops_at_the_log_line_budget(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for days in (10, 9, 8):
            add_job(conn, finished_days_ago=days, lines=30)

    report = await prune(db_url, batch_log_lines=50)

    # 30 lines, then 30 more would pass 50: one job a batch, the last one short.
    assert (report.kinds[0].deleted, report.kinds[0].batches) == (3, 3)
    assert report.counts()["jobs.log_lines"] == 90


async def test_a_dry_run_counts_and_deletes_nothing(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for _ in range(3):
            add_job(conn)
        add_worker(conn, "LOST")
        add_worker(conn, "CREATING", connected=False)

    dry = await prune(db_url, dry_run=True)
    wet = await prune(db_url)

    assert dry.dry_run and not wet.dry_run
    # Each kind is counted alone: the jobs' outbox rows are under "outbox" too, though
    # the real run deletes them with the jobs' events.
    assert dry.counts() == {
        "jobs": 3,
        "jobs.log_lines": 6,
        "jobs.events": 6,
        "outbox": 6 + 4,
        "workers": 1,
        "workers.events": 2,
        "registrations": 1,
        "registrations.events": 2,
        "submission_keys": 0,  # the test's prune() gives it no age: kept
    }
    assert wet.counts() == {**dry.counts(), "outbox": 4}
    with psycopg.connect(db_url) as conn:
        assert count(conn, "SELECT count(*) FROM workers") == 0


async def test_two_pruners_at_once_share_the_rows_without_waiting(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for _ in range(200):
            add_job(conn, lines=1)

    first, second = await asyncio.gather(
        prune(db_url, batch_size=10, outbox_age=0.0), prune(db_url, batch_size=10, outbox_age=0.0)
    )

    # Each job is deleted by one of them: no row counted twice, none left, no deadlock.
    assert first.counts()["jobs"] + second.counts()["jobs"] == 200
    assert first.counts()["jobs.events"] + second.counts()["jobs.events"] == 400
    with psycopg.connect(db_url) as conn:
        assert count(conn, "SELECT count(*) FROM jobs") == 0
        assert count(conn, "SELECT count(*) FROM job_logs") == 0


async def test_the_retention_lock_admits_one_pruner(db_url: str) -> None:
    async with await retention.connect(db_url) as one, await retention.connect(db_url) as two:
        assert await retention.try_lock(one)
        assert not await retention.try_lock(two)
    async with await retention.connect(db_url) as three:
        assert await retention.try_lock(three)  # released with the first's connection
