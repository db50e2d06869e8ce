"""Job lifecycle services. Each public method is one transaction that applies one
state change (or a batch of them for the dispatcher) together with its domain
events and outbox rows; a refused change raises and leaves nothing behind."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence

from psycopg.types.json import Jsonb

from hodei.db.connector import Database, Tx
from hodei.domain.events import EventType, event_for_job_state
from hodei.domain.jobs import (
    JobState,
    check_transition,
    retry_or_fail,
)
from hodei.errors import HodeiError, InvalidArgument, NotFound, StaleAttempt
from hodei.server.events import job_event, record
from hodei.server.models import AttemptRef, CancelCommand, JobRecord, QueueView
from hodei.server.occupancy import sync_worker
from hodei.server.reports import (
    FinishOutcome,
    ResultReport,
    StartOutcome,
    applied_or_none,
    finish_fenced,
    start_fenced,
)
from hodei.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 1000


def parse_id(value: str, what: str = "job_id") -> uuid.UUID:
    """A client-supplied id, or InvalidArgument with a one-line message."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(f"{what} {value!r} is not a valid UUID") from None


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


class JobService:
    def __init__(self, db: Database, settings: Settings, server_id: str) -> None:
        self.db = db
        self.settings = settings
        self.server_id = server_id
        #: Set when this process queued a job (hodei.server.submission): wakes the local
        #: dispatcher at once (the NOTIFY, for the other servers, takes a round trip more).
        self.queued = asyncio.Event()

    # ---- client operations ------------------------------------------------------

    async def get_job(self, job_id: uuid.UUID) -> JobRecord:
        async with self.db.connection() as tx:
            row = await tx.one("get_job", {"id": job_id})
        if row is None:
            raise NotFound(f"job {job_id} not found")
        return JobRecord.from_row(row)

    async def list_jobs(
        self, states: Iterable[JobState] = (), limit: int = 0, labels: dict[str, str] | None = None
    ) -> list[JobRecord]:
        limit = DEFAULT_LIST_LIMIT if limit <= 0 else min(limit, MAX_LIST_LIMIT)
        async with self.db.connection() as tx:
            rows = await tx.all(
                "list_jobs",
                {"states": [str(s) for s in states], "labels": Jsonb(labels or {}), "limit": limit},
            )
        return [JobRecord.from_row(r) for r in rows]

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
                job = await self._finish_locked(
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

    async def queue_view(self, limit: int = 20) -> QueueView:
        async with self.db.connection() as tx:
            summary = await tx.one("queue_summary")
            jobs = await tx.all("queue_jobs", {"limit": limit or 20})
            counts = await tx.all("job_state_counts")
        assert summary is not None
        return QueueView(
            depth=int(summary["depth"]),
            oldest_age_seconds=float(summary["oldest_age_seconds"]),
            jobs=jobs,
            job_counts={r["state"]: int(r["count"]) for r in counts},
        )

    # ---- dispatcher -------------------------------------------------------------

    async def claim_and_assign(self, worker_ids: list[uuid.UUID]) -> list[JobRecord]:
        """Claim queued jobs for the free slots of these workers (READY, connected here)
        and assign them: one statement, so one round trip and one commit per cycle
        (queries.sql `dispatch_jobs`). Returns the assigned jobs in dealing order."""
        if not worker_ids:
            return []
        async with self.db.connection() as tx:
            rows = await tx.all(
                "dispatch_jobs",
                {
                    "server_id": self.server_id,
                    "ids": worker_ids,
                    "limit": self.settings.dispatcher.batch_size,
                    "ack_timeout": self.settings.dispatcher.ack_timeout,
                    "actor": f"dispatcher:{self.server_id}",
                    "assigned_event": str(EventType.JOB_ASSIGNED),
                    "busy_event": str(EventType.WORKER_BUSY),
                },
            )
        return [JobRecord.from_row(r) for r in rows]

    # ---- worker reports -----------------------------------------------------------

    async def ack(
        self, worker_id: uuid.UUID, ref: AttemptRef, accepted: bool, reason: str
    ) -> JobRecord:
        if not accepted:
            return await self.requeue(
                ref.job_id,
                f"worker refused the job: {reason}",
                f"worker:{worker_id}",
                attempt=ref.attempt,
                worker_id=worker_id,
            )
        # The common case in one statement; it changes no state, so writes no event.
        async with self.db.connection() as tx:
            row = await tx.one(
                "ack_current_job",
                {"id": ref.job_id, "attempt": ref.attempt, "worker_id": worker_id},
            )
            if row is not None:
                return JobRecord.from_row(row)
            row = await tx.one("get_job", {"id": ref.job_id})
        if row is None:
            raise NotFound(f"job {ref.job_id} not found")
        job = JobRecord.from_row(row)
        fence(job, worker_id, ref.attempt)
        return job  # a late or repeated ack changes nothing

    async def start(self, worker_id: uuid.UUID, ref: AttemptRef) -> JobRecord:
        outcome = (await self.start_many(worker_id, [ref]))[0]
        if isinstance(outcome, HodeiError):
            raise outcome
        return outcome

    async def start_many(
        self, worker_id: uuid.UUID, refs: Sequence[AttemptRef]
    ) -> list[StartOutcome]:
        """JobStarted reports of one worker, in one fenced statement (hodei.server.reports);
        the refs it does not match go the locked way, one at a time."""
        applied = await applied_or_none(start_fenced(self.db, worker_id, refs))
        outcomes: list[StartOutcome] = []
        for ref in refs:
            job = applied.get(ref)
            if job is not None:
                logger.debug("job started", extra=job.log_fields)
                outcomes.append(job)
                continue
            try:
                outcomes.append(await self._start_checked(worker_id, ref))
            except HodeiError as err:
                outcomes.append(err)
        return outcomes

    async def _start_checked(self, worker_id: uuid.UUID, ref: AttemptRef) -> JobRecord:
        """Why the fenced start matched nothing: an error, or a repeat to ignore."""
        async with self.db.transaction() as tx:
            job = await lock_job(tx, ref.job_id)
            fence(job, worker_id, ref.attempt)
            if job.state == JobState.RUNNING:
                return job  # repeated after a reconnect
            check_transition(job.state, JobState.RUNNING)
            # Unreachable unless the row changed since the fenced statement: apply it here.
            row = await tx.one("start_job", {"id": job.id})
            assert row is not None
            started = JobRecord.from_row(row)
            await record(
                tx,
                [
                    job_event(
                        EventType.JOB_STARTED,
                        job.id,
                        f"worker:{worker_id}",
                        job.correlation_id,
                        state=str(JobState.RUNNING),
                        attempt=job.attempts,
                        worker_id=worker_id,
                    )
                ],
            )
        logger.debug("job started", extra=started.log_fields)
        return started

    async def finish(
        self,
        worker_id: uuid.UUID,
        ref: AttemptRef,
        state: JobState,
        exit_code: int | None,
        error: str,
        total_lines: int = 0,
    ) -> JobRecord | None:
        """Apply a worker's result, fenced: only the current attempt of this worker, only
        while ASSIGNED/RUNNING. A repeat of an already applied result is a no-op.
        Returns None, changing nothing, while fewer than `total_lines` of the attempt's
        lines are persisted."""
        report = ResultReport(ref, state, exit_code, error, total_lines)
        outcome = (await self.finish_many(worker_id, [report]))[0]
        if isinstance(outcome, HodeiError):
            raise outcome
        return outcome

    async def finish_many(
        self, worker_id: uuid.UUID, reports: Sequence[ResultReport]
    ) -> list[FinishOutcome]:
        """Results of one worker, in one fenced statement (job rows, its freed slots,
        events); refusals, repeats and results waiting for their lines go the locked
        way, one at a time."""
        applied = await applied_or_none(finish_fenced(self.db, worker_id, reports))
        outcomes: list[FinishOutcome] = []
        for report in reports:
            job = applied.get(report.ref)
            if job is not None:
                logger.info("job %s", str(report.state).lower(), extra=job.log_fields)
                outcomes.append(job)
                continue
            try:
                outcomes.append(await self._finish_checked(worker_id, report))
            except HodeiError as err:
                outcomes.append(err)
        return outcomes

    async def _finish_checked(self, worker_id: uuid.UUID, r: ResultReport) -> JobRecord | None:
        """Why the fenced result matched nothing: an error, a repeat, missing lines."""
        async with self.db.transaction() as tx:
            job = await lock_job(tx, r.ref.job_id)
            fence(job, worker_id, r.ref.attempt)
            if job.state.is_final:
                return job
            if job.attempt_lines < r.total_lines:
                return None
            if not job.state.is_active:
                raise StaleAttempt(f"job {job.id} is {job.state}, not running on {worker_id}")
            return await self._finish_locked(
                tx, job, r.state, r.exit_code, r.error, f"worker:{worker_id}"
            )

    async def _finish_locked(
        self,
        tx: Tx,
        job: JobRecord,
        state: JobState,
        exit_code: int | None,
        error: str | None,
        actor: str,
    ) -> JobRecord:
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
        logger.info("job %s", str(state).lower(), extra=done.log_fields)
        return done

    # ---- recovery -----------------------------------------------------------------

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
            return await self._requeue_locked(tx, job, reason, actor)

    async def _requeue_locked(self, tx: Tx, job: JobRecord, reason: str, actor: str) -> JobRecord:
        if job.cancel_requested_at is not None:
            return await self._finish_locked(tx, job, JobState.CANCELLED, None, reason, actor)
        target = retry_or_fail(job.attempts, job.max_attempts)
        if target == JobState.FAILED:
            return await self._finish_locked(
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
            return await self._finish_locked(tx, job, state, None, reason, actor)

    async def requeue_lost_jobs(self, tx: Tx, worker_id: uuid.UUID, reason: str, actor: str) -> int:
        """Inside a worker transition (LOST/TERMINATED): give back the worker's jobs."""
        rows = await tx.all("worker_jobs", {"worker_id": worker_id})
        for row in rows:
            job = await lock_job(tx, row["id"])
            if job.state.is_active and job.worker_id == worker_id:
                await tx.execute("dequeue_job", {"id": job.id})
                await self._requeue_locked(tx, job, reason, actor)
        return len(rows)
