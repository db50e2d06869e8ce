"""When a job started: the worker's clock at the spawn (JobStarted.started_at, or a
JobResult that also reports the start), kept between the assignment and the time the
server records it, corrected by a worker's measured skew. Services on a real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from hodei.domain.jobs import JobState
from hodei.server.models import AttemptRef, JobRecord
from hodei.server.results import AttemptResult
from hodei.server.services import Services
from tests.integration.server.direct_services import (
    events_and_outbox,
    ready_worker,
    services,
)

pytestmark = pytest.mark.integration

__all__ = ["services"]  # the fixture


async def assigned_job(s: Services, worker_id: uuid.UUID) -> JobRecord:
    job = await s.submission.queue(["true"])
    [assigned] = await s.assigner.claim_and_assign([worker_id])
    assert assigned.id == job.id
    return assigned


def events(db_url: str, job_id: uuid.UUID) -> list[tuple[str, str, dict[str, object]]]:
    """(type, the inserting transaction, payload) of a job's events, in order."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT event_type, xmin::text, payload FROM domain_events "
            "WHERE aggregate_id = %s ORDER BY id",
            (job_id,),
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


async def test_a_result_that_reports_its_start_records_running_then_the_end_at_once(
    services: Services, db_url: str
) -> None:
    s = services
    worker_id = await ready_worker(s)
    job = await assigned_job(s, worker_id)
    assert job.assigned_at is not None
    spawned = datetime.now(UTC)
    ref = AttemptRef(job.id, 1)
    [done] = await s.results.finish_many(
        worker_id, [AttemptResult(ref, JobState.SUCCEEDED, 0, "", started_at=spawned)]
    )
    assert isinstance(done, JobRecord) and done.state == JobState.SUCCEEDED
    assert done.started_at == spawned  # the worker's time, not the recording's
    assert done.finished_at is not None and job.assigned_at <= spawned <= done.finished_at
    seen = events(db_url, job.id)
    assert [t for t, _, _ in seen] == ["JobCreated", "JobAssigned", "JobStarted", "JobSucceeded"]
    (_, started_tx, started), (_, finished_tx, finished) = seen[2], seen[3]
    assert started_tx == finished_tx  # one transaction
    assert started["state"] == "RUNNING" and started["attempt"] == 1
    assert finished["previous"] == "RUNNING"
    assert all(has_outbox for _, has_outbox in events_and_outbox(db_url, job.id))
    worker = await s.workers.get(worker_id)
    assert worker.running_jobs == 0


async def test_a_reported_start_is_kept_between_the_assignment_and_now(
    services: Services,
) -> None:
    s = services
    worker_id = await ready_worker(s, slots=2)
    early = await assigned_job(s, worker_id)
    late = await assigned_job(s, worker_id)
    now = datetime.now(UTC)
    outcomes = await s.results.start_many(
        worker_id,
        [AttemptRef(early.id, 1), AttemptRef(late.id, 1)],
        [now - timedelta(hours=1), now + timedelta(hours=1)],
    )
    before, after = (o for o in outcomes if isinstance(o, JobRecord))
    assert before.started_at == early.assigned_at  # not before it was assigned
    assert after.started_at is not None and after.started_at <= datetime.now(UTC)


async def test_a_worker_clock_known_to_be_off_is_corrected(services: Services, db_url: str) -> None:
    s = services
    worker_id = await ready_worker(s, slots=2)
    job = await assigned_job(s, worker_id)
    with psycopg.connect(db_url) as conn:  # as a Hello 30 s ahead would have measured
        conn.execute("UPDATE workers SET clock_skew_s = 30 WHERE id = %s", (worker_id,))
    spawned = datetime.now(UTC)
    [started] = await s.results.start_many(
        worker_id, [AttemptRef(job.id, 1)], [spawned + timedelta(seconds=30)]
    )
    assert isinstance(started, JobRecord) and started.started_at is not None
    assert abs((started.started_at - spawned).total_seconds()) < 0.5


async def test_a_start_already_recorded_is_not_recorded_again_by_the_result(
    services: Services, db_url: str
) -> None:
    s = services
    worker_id = await ready_worker(s)
    job = await assigned_job(s, worker_id)
    ref = AttemptRef(job.id, 1)
    first = datetime.now(UTC)
    running = await s.results.start(worker_id, ref, first)
    # A reconnect resent the result that also reports the start: it is the end only.
    [done] = await s.results.finish_many(
        worker_id,
        [AttemptResult(ref, JobState.SUCCEEDED, 0, "", started_at=first + timedelta(seconds=1))],
    )
    assert isinstance(done, JobRecord) and done.started_at == running.started_at == first
    assert [t for t, _, _ in events(db_url, job.id)].count("JobStarted") == 1


async def test_a_result_without_a_start_ends_an_assigned_job_without_running(
    services: Services, db_url: str
) -> None:
    # The process never started (a command that cannot be found): no RUNNING, no time.
    s = services
    worker_id = await ready_worker(s)
    job = await assigned_job(s, worker_id)
    [done] = await s.results.finish_many(
        worker_id,
        [AttemptResult(AttemptRef(job.id, 1), JobState.FAILED, None, "cannot start 'nope'")],
    )
    assert isinstance(done, JobRecord) and done.state == JobState.FAILED
    assert done.started_at is None
    assert [t for t, _, _ in events(db_url, job.id)] == ["JobCreated", "JobAssigned", "JobFailed"]
