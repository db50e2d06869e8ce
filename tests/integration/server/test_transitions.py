"""Every transition is one transaction with its domain event and outbox row; an
invalid transition changes nothing. Services are driven directly on a real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from hodei.domain.jobs import JobState
from hodei.domain.workers import WorkerState
from hodei.errors import InvalidArgument, InvalidTransition, NotFound, StaleAttempt
from hodei.server.models import AttemptRef, LogChunk, LogEntryIn
from hodei.server.results import AttemptResult
from hodei.server.services import Services
from tests.integration.server.direct_services import (
    SERVER,
    events_and_outbox,
    ready_worker,
    services,
    snapshot,
)

pytestmark = pytest.mark.integration

__all__ = ["services"]  # the fixture


async def test_full_lifecycle_writes_one_event_and_outbox_row_per_transition(
    services: Services, db_url: str
) -> None:
    s = services
    worker_id = await ready_worker(s)
    job = await s.submission.queue(["true"])
    assert job.state == JobState.PENDING
    [assigned] = await s.assigner.claim_and_assign([worker_id])
    assert assigned.state == JobState.ASSIGNED and assigned.attempts == 1
    assert (await s.workers.get(worker_id)).state == WorkerState.BUSY
    ref = AttemptRef(job.id, 1)
    await s.results.ack(worker_id, ref, True, "")
    await s.results.start(worker_id, ref)
    done = await s.results.finish(worker_id, ref, JobState.SUCCEEDED, 0, "")
    assert done is not None
    assert done.state == JobState.SUCCEEDED and done.exit_code == 0
    assert (await s.workers.get(worker_id)).state == WorkerState.READY
    assert events_and_outbox(db_url, job.id) == [
        ("JobCreated", True),
        ("JobAssigned", True),
        ("JobStarted", True),
        ("JobSucceeded", True),
    ]
    assert events_and_outbox(db_url, worker_id) == [
        ("WorkerRegistered", True),
        ("WorkerReady", True),
        ("WorkerBusy", True),
        ("WorkerReady", True),
    ]


async def test_invalid_transition_changes_nothing(services: Services, db_url: str) -> None:
    s = services
    worker_id = await ready_worker(s)
    job = await s.submission.queue(["true"])
    await s.assigner.claim_and_assign([worker_id])
    ref = AttemptRef(job.id, 1)
    await s.results.finish(worker_id, ref, JobState.FAILED, 1, "boom")
    before = snapshot(db_url)
    with pytest.raises(InvalidTransition):
        await s.results.start(worker_id, ref)  # FAILED -> RUNNING
    with pytest.raises(InvalidTransition):
        await s.transitions.cancel_job(job.id)  # FAILED -> CANCELLED
    assert snapshot(db_url) == before


async def test_stale_attempt_result_is_fenced(services: Services, db_url: str) -> None:
    s = services
    first = await ready_worker(s)
    job = await s.submission.queue(["sleep", "100"], max_attempts=3)
    await s.assigner.claim_and_assign([first])
    await s.results.start(first, AttemptRef(job.id, 1))
    # The first worker goes silent and is declared LOST: the job goes back to the queue.
    assert await s.workers.mark_gone(first, WorkerState.LOST, "test")
    requeued = await s.job_reads.get_job(job.id)
    assert requeued.state == JobState.PENDING and requeued.worker_id is None
    second = await ready_worker(s)
    [again] = await s.assigner.claim_and_assign([second])
    assert again.attempts == 2 and again.worker_id == second
    before = snapshot(db_url)
    # The first worker's late result and logs for attempt 1 are refused, nothing changes.
    with pytest.raises(StaleAttempt):
        await s.results.finish(first, AttemptRef(job.id, 1), JobState.SUCCEEDED, 0, "")
    with pytest.raises(StaleAttempt):
        await s.logs.ingest(
            first,
            AttemptRef(job.id, 1),
            0,
            LogChunk.of([LogEntryIn(False, "late", datetime.now(UTC))]),
        )
    # Even with the right attempt number, another worker is refused.
    with pytest.raises(StaleAttempt):
        await s.results.finish(first, AttemptRef(job.id, 2), JobState.SUCCEEDED, 0, "")
    assert snapshot(db_url) == before
    done = await s.results.finish(second, AttemptRef(job.id, 2), JobState.SUCCEEDED, 0, "")
    assert done is not None
    assert done.state == JobState.SUCCEEDED
    types = [t for t, _ in events_and_outbox(db_url, job.id)]
    assert types == [
        "JobCreated",
        "JobAssigned",
        "JobStarted",
        "JobRequeued",
        "JobAssigned",
        "JobSucceeded",
    ]


async def test_lost_worker_with_exhausted_attempts_fails_the_job(services: Services) -> None:
    s = services
    worker_id = await ready_worker(s)
    job = await s.submission.queue(["true"], max_attempts=1)
    await s.assigner.claim_and_assign([worker_id])
    await s.workers.mark_gone(worker_id, WorkerState.LOST, "silent")
    failed = await s.job_reads.get_job(job.id)
    assert failed.state == JobState.FAILED and "attempts exhausted" in (failed.error or "")
    assert (await s.workers.get(worker_id)).state == WorkerState.LOST


async def test_lost_worker_reconnects_and_is_taken_back(services: Services) -> None:
    s = services
    worker_id = await ready_worker(s)
    await s.workers.disconnect(worker_id)
    await s.workers.mark_gone(worker_id, WorkerState.LOST, "silent")
    worker, superseded = await s.workers.connect(worker_id, [AttemptRef(uuid.uuid4(), 1)], 1)
    assert worker.state == WorkerState.READY and worker.server_id == SERVER
    assert len(superseded) == 1  # an attempt it does not hold


async def test_cancel_pending_job_removes_it_from_the_queue(
    services: Services, db_url: str
) -> None:
    s = services
    job = await s.submission.queue(["true"])
    cancelled, command = await s.transitions.cancel_job(job.id, "no longer needed")
    assert cancelled.state == JobState.CANCELLED and command is None
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM job_queue").fetchone() == (0,)
    assert [t for t, _ in events_and_outbox(db_url, job.id)] == ["JobCreated", "JobCancelled"]


async def test_cancel_running_job_asks_the_worker(services: Services) -> None:
    s = services
    worker_id = await ready_worker(s)
    job = await s.submission.queue(["sleep", "10"])
    await s.assigner.claim_and_assign([worker_id])
    await s.results.start(worker_id, AttemptRef(job.id, 1))
    still_running, command = await s.transitions.cancel_job(job.id)
    assert still_running.state == JobState.RUNNING and still_running.cancel_requested_at
    assert command is not None and command.ref == AttemptRef(job.id, 1)
    done = await s.results.finish(worker_id, AttemptRef(job.id, 1), JobState.CANCELLED, None, "")
    assert done is not None
    assert done.state == JobState.CANCELLED


async def test_bad_input_is_refused_and_nothing_is_written(services: Services, db_url: str) -> None:
    before = snapshot(db_url)
    with pytest.raises(InvalidArgument):
        await services.submission.queue([])
    with pytest.raises(InvalidArgument):
        await services.submission.queue(["x"], timeout_seconds=-1)
    with pytest.raises(NotFound):
        await services.job_reads.get_job(uuid.uuid4())
    assert snapshot(db_url) == before


async def test_log_ingestion_sequences_dedup_and_gaps(services: Services, db_url: str) -> None:
    s = services
    worker_id = await ready_worker(s)
    job = await s.submission.queue(["x"])
    await s.assigner.claim_and_assign([worker_id])
    ref = AttemptRef(job.id, 1)
    now = datetime.now(UTC)

    def batch(*lines: str) -> LogChunk:
        return LogChunk.of([LogEntryIn(False, line, now) for line in lines])

    assert await s.logs.ingest(worker_id, ref, 0, batch("a", "b\x00c")) == 2
    # A batch resent after a reconnect overlaps what is stored: only the new part is kept.
    assert await s.logs.ingest(worker_id, ref, 1, batch("b\x00c", "d")) == 3
    # A batch past the expected line is not stored; the answer says where to resume.
    assert await s.logs.ingest(worker_id, ref, 10, batch("z")) == 3
    lines, complete = await s.logs.read(job.id)
    assert [(x.sequence, x.line) for x in lines] == [(1, "a"), (2, "b\ufffdc"), (3, "d")]
    assert not complete
    # A result announcing more lines than persisted is held back (None), not applied.
    assert await s.results.finish(worker_id, ref, JobState.SUCCEEDED, 0, "", total_lines=4) is None
    assert (await s.job_reads.get_job(job.id)).state == JobState.ASSIGNED
    held = await s.results.finish(worker_id, ref, JobState.SUCCEEDED, 0, "", total_lines=3)
    assert held is not None and held.state == JobState.SUCCEEDED


async def test_reports_read_together_are_applied_together_and_refusals_named(
    services: Services, db_url: str
) -> None:
    """start_many/finish_many (one statement each): the applicable reports change
    their jobs, the worker's slots and write their events; each other report gets its
    own outcome (a refusal, or None while its lines are missing) and changes nothing."""
    s = services
    worker_id = await ready_worker(s, slots=4)
    jobs = [await s.submission.queue(["true"]) for _ in range(4)]
    assigned = await s.assigner.claim_and_assign([worker_id])
    assert len(assigned) == 4
    assert (await s.workers.get(worker_id)).state == WorkerState.BUSY
    refs = [AttemptRef(j.id, 1) for j in jobs]
    unknown = AttemptRef(uuid.uuid4(), 1)
    started = await s.results.start_many(worker_id, [*refs, AttemptRef(jobs[0].id, 2), unknown])
    assert [o.state for o in started[:4] if not isinstance(o, Exception)] == [JobState.RUNNING] * 4
    assert isinstance(started[4], StaleAttempt) and isinstance(started[5], NotFound)
    # The third job still has a line in flight; the fourth stays running.
    outcomes = await s.results.finish_many(
        worker_id,
        [
            AttemptResult(refs[0], JobState.SUCCEEDED, 0, ""),
            AttemptResult(refs[1], JobState.FAILED, 2, "exit 2"),
            AttemptResult(refs[2], JobState.SUCCEEDED, 0, "", total_lines=1),
            AttemptResult(AttemptRef(jobs[3].id, 7), JobState.SUCCEEDED, 0, ""),
        ],
    )
    assert [getattr(o, "state", o) for o in outcomes[:3]] == [
        JobState.SUCCEEDED,
        JobState.FAILED,
        None,
    ]
    assert isinstance(outcomes[3], StaleAttempt)
    worker = await s.workers.get(worker_id)
    assert (worker.state, worker.running_jobs) == (WorkerState.READY, 2)
    assert worker.current_job_id in {jobs[2].id, jobs[3].id}
    assert [t for t, _ in events_and_outbox(db_url, jobs[1].id)] == [
        "JobCreated",
        "JobAssigned",
        "JobStarted",
        "JobFailed",
    ]
    assert all(has_outbox for _, has_outbox in events_and_outbox(db_url, jobs[0].id))
    # One WorkerReady for the two freed slots, not one per job.
    assert [t for t, _ in events_and_outbox(db_url, worker_id)][-2:] == [
        "WorkerBusy",
        "WorkerReady",
    ]
    assert (await s.job_reads.get_job(jobs[2].id)).state == JobState.RUNNING


async def test_a_group_of_specs_may_mix_whole_and_fractional_timeouts(services: Services) -> None:
    # QueueJobs sends each column as one array; psycopg refuses an int/float mix.
    jobs = await services.submission.submit_many(
        [
            {"command": ["true"], "timeout_seconds": 5},
            {"command": ["true"], "timeout_seconds": 2.5},
            {"command": ["true"]},
        ]
    )
    assert [job.timeout_seconds for job in jobs] == [5.0, 2.5, None]
