"""Job state changes made under the job's row lock, each with its events and outbox
rows: the shared end of every path that ends or takes back a job.

The module functions run inside the caller's transaction (a worker's result that the
fenced statement did not match, a lost worker's jobs, a reconnect without a job);
`JobTransitions` opens its own for the client's cancel, a requeue (a stream closed
before RunJob, a refused or unacknowledged job) and the recovery loop's forced ends.
The lock order is queue row, job, worker.
"""

from __future__ import annotations

import logging
import uuid

from hodei.db.connector import Database, Tx
from hodei.domain.events import EventType, event_for_job_state
from hodei.domain.jobs import JobState, check_transition, retry_or_fail
from hodei.errors import NotFound, StaleAttempt
from hodei.metrics import server_metrics
from hodei.server.events import job_event, record
from hodei.server.models import AttemptRef, CancelCommand, JobRecord
from hodei.server.occupancy import sync_worker

logger = logging.getLogger(__name__)


async def lock_job(tx: Tx, job_id: uuid.UUID) -> JobRecord:
    row = await tx.one("lock_job", {"id": job_id})
    if row is None:
        raise NotFound(f"job {job_id} not found")
    return JobRecord.from_row(row)


def fence(job: JobRecord, worker_id: uuid.UUID, attempt: int) -> None:
    """Refuse anything a worker says about an attempt that is no longer its current one."""
    if job.attempts != attempt or job.worker_id != worker_id:
        raise StaleAttempt(
            f"attempt {attempt} of job {job.id} is not held by worker {worker_id} "
            f"(current attempt {job.attempts})"
        )


async def finish_locked(
    tx: Tx,
    job: JobRecord,
    state: JobState,
    exit_code: int | None,
    error: str | None,
    actor: str,
) -> JobRecord:
    """A locked job to a final state; its worker's slot is freed."""
    check_transition(job.state, state)
    if job.state == JobState.PENDING:
        await tx.execute("dequeue_job", {"id": job.id})  # active jobs are not queued
    row = await tx.one(
        "finish_job",
        {"id": job.id, "state": str(state), "exit_code": exit_code, "error": error},
    )
    assert row is not None
    done = JobRecord.from_row(row)
    events = [
        job_event(
            event_for_job_state(state),
            job.id,
            actor,
            job.correlation_id,
            state=str(state),
            previous=str(job.state),
            attempt=job.attempts,
            worker_id=job.worker_id,
            exit_code=exit_code,
            error=error,
        )
    ]
    if job.worker_id is not None:
        events += await sync_worker(tx, job.worker_id, actor)
    await record(tx, events)
    # Counted inside the caller's transaction: one that rolls back after this (rare: the
    # commit itself failing) counts a final state the table does not keep.
    server_metrics().finished(str(state), done.started_at, done.finished_at)
    logger.info("job %s", str(state).lower(), extra=done.log_fields)
    return done


async def requeue_locked(tx: Tx, job: JobRecord, reason: str, actor: str) -> JobRecord:
    """A locked active job back to PENDING while attempts remain, FAILED otherwise
    (hodei.domain.jobs.retry_or_fail); CANCELLED if a cancel was asked for."""
    if job.cancel_requested_at is not None:
        return await finish_locked(tx, job, JobState.CANCELLED, None, reason, actor)
    target = retry_or_fail(job.attempts, job.max_attempts)
    if target == JobState.FAILED:
        return await finish_locked(
            tx, job, JobState.FAILED, None, f"{reason}; attempts exhausted", actor
        )
    check_transition(job.state, JobState.PENDING)
    row = await tx.one("requeue_job", {"id": job.id, "error": reason})
    assert row is not None
    await tx.execute("enqueue_job", {"id": job.id})
    await tx.one("notify_jobs", {"id": job.id})
    requeued = JobRecord.from_row(row)
    events = [
        job_event(
            EventType.JOB_REQUEUED,
            job.id,
            actor,
            job.correlation_id,
            state=str(JobState.PENDING),
            previous=str(job.state),
            attempt=job.attempts,
            worker_id=job.worker_id,
            reason=reason,
        )
    ]
    if job.worker_id is not None:
        events += await sync_worker(tx, job.worker_id, actor)
    await record(tx, events)
    logger.warning("job requeued: %s", reason, extra=job.log_fields)
    return requeued


async def requeue_lost_jobs(tx: Tx, worker_id: uuid.UUID, reason: str, actor: str) -> int:
    """Inside a worker transition (LOST/TERMINATED): give back the worker's jobs."""
    rows = await tx.all("worker_jobs", {"worker_id": worker_id})
    for row in rows:
        job = await lock_job(tx, row["id"])
        if job.state.is_active and job.worker_id == worker_id:
            await tx.execute("dequeue_job", {"id": job.id})
            await requeue_locked(tx, job, reason, actor)
    return len(rows)


class JobTransitions:
    """The locked changes that open their own transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def cancel_job(
        self, job_id: uuid.UUID, reason: str = "", force: bool = False
    ) -> tuple[JobRecord, CancelCommand | None]:
        """PENDING jobs are cancelled at once. For ASSIGNED/RUNNING ones the cancel is
        recorded and a CancelCommand returned for the holding worker; the job becomes
        CANCELLED when the worker reports it (or the recovery loop forces it)."""
        async with self.db.transaction() as tx:
            # Queue row first: the lock order is queue, job, worker.
            await tx.execute("dequeue_job", {"id": job_id})
            job = await lock_job(tx, job_id)
            if job.state == JobState.PENDING:
                job = await finish_locked(
                    tx, job, JobState.CANCELLED, None, reason or "cancelled", "client"
                )
                return job, None
            check_transition(job.state, JobState.CANCELLED)  # final states refuse
            row = await tx.one("request_cancel", {"id": job_id})
            assert row is not None
            updated = JobRecord.from_row(row)
            if job.cancel_requested_at is None:
                await record(
                    tx,
                    [
                        job_event(
                            EventType.JOB_CANCEL_REQUESTED,
                            job_id,
                            "client",
                            job.correlation_id,
                            attempt=job.attempts,
                            worker_id=job.worker_id,
                            reason=reason,
                            force=force,
                        )
                    ],
                )
        assert updated.worker_id is not None
        logger.info("job cancel requested", extra=updated.log_fields)
        return updated, CancelCommand(AttemptRef(job_id, updated.attempts), force, reason)

    async def requeue(
        self,
        job_id: uuid.UUID,
        reason: str,
        actor: str,
        attempt: int | None = None,
        worker_id: uuid.UUID | None = None,
    ) -> JobRecord:
        """Take an ASSIGNED/RUNNING job away from its worker: back to PENDING while
        attempts remain, FAILED otherwise (hodei.domain.jobs.retry_or_fail)."""
        async with self.db.transaction() as tx:
            await tx.execute("dequeue_job", {"id": job_id})
            job = await lock_job(tx, job_id)
            if attempt is not None and worker_id is not None:
                fence(job, worker_id, attempt)
            return await requeue_locked(tx, job, reason, actor)

    async def force_final(
        self, job_id: uuid.UUID, state: JobState, reason: str, actor: str
    ) -> JobRecord | None:
        """Server-side end of an active job (timeout, unanswered cancel). None if it
        is no longer active."""
        async with self.db.transaction() as tx:
            await tx.execute("dequeue_job", {"id": job_id})
            job = await lock_job(tx, job_id)
            if not job.state.is_active:
                return None
            return await finish_locked(tx, job, state, None, reason, actor)
