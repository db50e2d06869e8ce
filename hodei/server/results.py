"""A worker's JobAck, JobStarted and JobResult messages, applied.

Under load one worker stream carries several starts and results between two reads of
the server. Applying each in its own statement and commit was the largest per-job
cost, so the messages read together are applied by one fenced statement per kind
(queries.sql `start_jobs_fenced`, `finish_jobs_fenced`): the job rows, the worker's
occupancy, the events and their outbox rows, all or nothing. On an idle platform a
group is one message, and the same statement runs with arrays of one.

A message the statement does not match (a superseded attempt, a repeat after a
reconnect, a result whose lines are still in flight, a refused transition) takes the
locked one-at-a-time path (hodei.server.transitions), which names the reason.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from psycopg.types.json import Jsonb

from hodei.db.connector import Database, Tx
from hodei.domain.events import EventType, event_for_job_state
from hodei.domain.jobs import ACTIVE_JOB_STATES, JobState, can_transition, check_transition
from hodei.errors import HodeiError, NotFound, StaleAttempt
from hodei.log_context import job_context
from hodei.metrics import server_metrics
from hodei.server.events import Event, job_event, record
from hodei.server.models import AttemptRef, JobRecord
from hodei.server.transitions import JobTransitions, fence, finish_locked, lock_job
from hodei.tracing import context_of, job_attributes

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What a worker said about an attempt's end."""

    ref: AttemptRef
    state: JobState
    exit_code: int | None
    error: str
    total_lines: int = 0
    #: What the worker read of the attempt's output (None: not reported); stored beside
    #: jobs.attempt_lines, what the server stored of it.
    lines_read: int | None = None
    bytes_read: int | None = None
    #: The W3C traceparent of the worker's RunJob span ("": not traced).
    trace_context: str = ""
    #: When its process started, by the worker's clock, if this result also reports
    #: the start (no JobStarted was sent: a job of a few milliseconds).
    started_at: datetime | None = None


#: What became of one message: the job after it; None for a result whose lines are not
#: all persisted yet (nothing changed); or the error that refused it.
StartOutcome = JobRecord | HodeiError
FinishOutcome = JobRecord | None | HodeiError


def sources(target: JobState, among: Iterable[JobState] = tuple(JobState)) -> list[str]:
    """The states from which the domain allows `target`: the guard of a one-statement
    transition, so that the rule stays in hodei.domain.jobs."""
    return [str(s) for s in among if can_transition(s, target)]


async def ack_fenced(
    tx: Tx, worker_id: uuid.UUID, refs: Sequence[AttemptRef]
) -> dict[AttemptRef, JobRecord]:
    """Accepted JobAcks of ASSIGNED attempts this worker holds, in one statement (no
    state changes, so no event). Returns the refs it applied."""
    rows = await tx.all(
        "ack_jobs_fenced",
        {
            "ids": [ref.job_id for ref in refs],
            "attempts": [ref.attempt for ref in refs],
            "worker_id": worker_id,
        },
    )
    return _by_ref(rows)


def _start_event(ref: AttemptRef, worker_id: uuid.UUID, correlation_id: str = "") -> Event:
    return job_event(
        EventType.JOB_STARTED,
        ref.job_id,
        f"worker:{worker_id}",
        correlation_id,
        state=str(JobState.RUNNING),
        attempt=ref.attempt,
        worker_id=worker_id,
    )


def _start_payload(ref: AttemptRef, worker_id: uuid.UUID) -> Jsonb:
    return Jsonb(_start_event(ref, worker_id).payload)


async def start_fenced(
    tx: Tx,
    worker_id: uuid.UUID,
    refs: Sequence[AttemptRef],
    started_at: Sequence[datetime | None],
) -> dict[AttemptRef, JobRecord]:
    """ASSIGNED -> RUNNING for every ref this worker holds, in one statement, at the
    worker's `started_at` of each (None: now). Returns the refs it applied; the
    others changed nothing."""
    actor = f"worker:{worker_id}"
    rows = await tx.all(
        "start_jobs_fenced",
        {
            "ids": [ref.job_id for ref in refs],
            "attempts": [ref.attempt for ref in refs],
            "payloads": [_start_payload(ref, worker_id) for ref in refs],
            "started_ats": list(started_at),
            "worker_id": worker_id,
            "from_states": sources(JobState.RUNNING),
            "event_type": str(EventType.JOB_STARTED),
            "actor": actor,
        },
    )
    return _by_ref(rows)


async def finish_fenced(
    tx: Tx, worker_id: uuid.UUID, results: Sequence[AttemptResult]
) -> dict[AttemptRef, JobRecord]:
    """Apply every result that this worker's current attempt allows, in one statement.
    Returns the refs it applied; the others changed nothing."""
    actor = f"worker:{worker_id}"
    events = [
        job_event(
            event_for_job_state(r.state),
            r.ref.job_id,
            actor,
            state=str(r.state),
            attempt=r.ref.attempt,
            worker_id=worker_id,
            exit_code=r.exit_code,
            error=r.error,
        )
        for r in results
    ]
    rows = await tx.all(
        "finish_jobs_fenced",
        {
            "ids": [r.ref.job_id for r in results],
            "attempts": [r.ref.attempt for r in results],
            "states": [str(r.state) for r in results],
            "exit_codes": [r.exit_code for r in results],
            "errors": [r.error for r in results],
            "total_lines": [r.total_lines for r in results],
            "lines_read": [r.lines_read for r in results],
            "bytes_read": [r.bytes_read for r in results],
            "started_ats": [r.started_at for r in results],
            "start_payloads": [
                None if r.started_at is None else _start_payload(r.ref, worker_id) for r in results
            ],
            "started_event": str(EventType.JOB_STARTED),
            "sources": [",".join(sources(r.state, among=ACTIVE_JOB_STATES)) for r in results],
            "event_types": [str(e.type) for e in events],
            "payloads": [Jsonb(e.payload) for e in events],
            "worker_id": worker_id,
            "actor": actor,
            "busy_event": str(EventType.WORKER_BUSY),
            "ready_event": str(EventType.WORKER_READY),
        },
    )
    return _by_ref(rows)


def _by_ref(rows: list[dict[str, object]]) -> dict[AttemptRef, JobRecord]:
    jobs = (JobRecord.from_row(row) for row in rows)
    return {AttemptRef(job.id, job.attempts): job for job in jobs}


async def applied_or_none(
    fenced: Awaitable[dict[AttemptRef, JobRecord]],
) -> dict[AttemptRef, JobRecord]:
    """What a group statement applied; nothing when it failed as a whole in a way that
    one message at a time can get past (a deadlock with another multi-row writer, a
    serialization failure): every message then takes the locked path."""
    try:
        return await fenced
    except _RETRYABLE_ONE_BY_ONE:
        return {}


_RETRYABLE_ONE_BY_ONE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


@dataclass
class GroupOutcomes:
    """What became of each message of a group (WorkerResults.apply_group), in order."""

    acks: list[StartOutcome]
    started: list[StartOutcome]
    finished: list[FinishOutcome]


class WorkerResults:
    """What workers say about their attempts: accepted or refused, started, ended."""

    def __init__(self, db: Database, transitions: JobTransitions, tracing: bool = False) -> None:
        self.db = db
        self.transitions = transitions
        #: Make a result span for each traced result applied (settings.tracing.enabled).
        self.tracing = tracing

    async def ack(
        self, worker_id: uuid.UUID, ref: AttemptRef, accepted: bool, reason: str
    ) -> JobRecord:
        with job_context(ref.job_id, attempt=ref.attempt, worker_id=worker_id):
            return await self._ack(worker_id, ref, accepted, reason)

    async def _ack(
        self, worker_id: uuid.UUID, ref: AttemptRef, accepted: bool, reason: str
    ) -> JobRecord:
        if not accepted:
            return await self.transitions.requeue(
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

    async def start(
        self, worker_id: uuid.UUID, ref: AttemptRef, started_at: datetime | None = None
    ) -> JobRecord:
        outcome = (await self.start_many(worker_id, [ref], [started_at]))[0]
        if isinstance(outcome, HodeiError):
            raise outcome
        return outcome

    async def start_many(
        self,
        worker_id: uuid.UUID,
        refs: Sequence[AttemptRef],
        started_at: Sequence[datetime | None] = (),
    ) -> list[StartOutcome]:
        """JobStarted messages of one worker (with the worker's start time of each, when
        it said), in one fenced statement; the refs it does not match go the locked way,
        one at a time."""
        times = list(started_at) or [None] * len(refs)
        async with self.db.connection() as tx:
            applied = await applied_or_none(start_fenced(tx, worker_id, refs, times))
        return await self._start_outcomes(worker_id, refs, times, applied)

    async def apply_group(
        self,
        worker_id: uuid.UUID,
        acks: Sequence[AttemptRef],
        started: Sequence[AttemptRef],
        results: Sequence[AttemptResult],
        started_at: Sequence[datetime | None] = (),
    ) -> GroupOutcomes:
        """Accepted acks, starts and results one worker stream carried together, in one
        transaction: one commit (a WAL flush) for the lot, where a prefetching worker's
        ack, start and result each cost one. In protocol order (acks, starts, results:
        a job's start is sent after its ack and before its result). What the statements
        do not match goes the locked way, one at a time, after the commit. `started_at`:
        the worker's start time of each of `started`."""
        began = time.time_ns() if self.tracing else 0
        times = list(started_at) or [None] * len(started)
        try:
            async with self.db.transaction() as tx:
                acked = await ack_fenced(tx, worker_id, acks) if acks else {}
                applied_starts = (
                    await start_fenced(tx, worker_id, started, times) if started else {}
                )
                applied_results = await finish_fenced(tx, worker_id, results) if results else {}
        except _RETRYABLE_ONE_BY_ONE:
            acked, applied_starts, applied_results = {}, {}, {}
        ack_outcomes: list[StartOutcome] = []
        for ref in acks:
            job = acked.get(ref)
            if job is None:
                try:
                    job = await self.ack(worker_id, ref, True, "")
                except HodeiError as err:
                    ack_outcomes.append(err)
                    continue
            ack_outcomes.append(job)
        return GroupOutcomes(
            ack_outcomes,
            await self._start_outcomes(worker_id, started, times, applied_starts),
            await self._finish_outcomes(worker_id, results, applied_results, began),
        )

    async def _start_outcomes(
        self,
        worker_id: uuid.UUID,
        refs: Sequence[AttemptRef],
        times: Sequence[datetime | None],
        applied: dict[AttemptRef, JobRecord],
    ) -> list[StartOutcome]:
        outcomes: list[StartOutcome] = []
        for ref, started_at in zip(refs, times, strict=True):
            with job_context(ref.job_id, attempt=ref.attempt, worker_id=worker_id):
                job = applied.get(ref)
                if job is not None:
                    logger.debug("job started", extra=job.log_fields)
                    outcomes.append(job)
                    continue
                try:
                    outcomes.append(await self._start_checked(worker_id, ref, started_at))
                except HodeiError as err:
                    outcomes.append(err)
        return outcomes

    async def _start_checked(
        self, worker_id: uuid.UUID, ref: AttemptRef, started_at: datetime | None
    ) -> JobRecord:
        """Why the fenced start matched nothing: an error, or a repeat to ignore."""
        async with self.db.transaction() as tx:
            job = await lock_job(tx, ref.job_id)
            fence(job, worker_id, ref.attempt)
            if job.state == JobState.RUNNING:
                return job  # repeated after a reconnect
            check_transition(job.state, JobState.RUNNING)
            # Unreachable unless the row changed since the fenced statement: apply it here.
            started = await _start_locked(tx, job, worker_id, started_at)
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
        result = AttemptResult(ref, state, exit_code, error, total_lines)
        outcome = (await self.finish_many(worker_id, [result]))[0]
        if isinstance(outcome, HodeiError):
            raise outcome
        return outcome

    async def finish_many(
        self, worker_id: uuid.UUID, results: Sequence[AttemptResult]
    ) -> list[FinishOutcome]:
        """Results of one worker, in one fenced statement (job rows, its freed slots,
        events); refusals, repeats and results waiting for their lines go the locked
        way, one at a time."""
        began = time.time_ns() if self.tracing else 0
        async with self.db.connection() as tx:
            applied = await applied_or_none(finish_fenced(tx, worker_id, results))
        return await self._finish_outcomes(worker_id, results, applied, began)

    async def _finish_outcomes(
        self,
        worker_id: uuid.UUID,
        results: Sequence[AttemptResult],
        applied: dict[AttemptRef, JobRecord],
        began: int,
    ) -> list[FinishOutcome]:
        outcomes: list[FinishOutcome] = []
        for result in results:
            ref = result.ref
            with job_context(ref.job_id, attempt=ref.attempt, worker_id=worker_id):
                job = applied.get(ref)
                if job is not None:
                    server_metrics().finished(str(result.state), job.started_at, job.finished_at)
                    logger.info("job %s", str(result.state).lower(), extra=job.log_fields)
                    outcomes.append(job)
                    continue
                try:
                    outcomes.append(await self._finish_checked(worker_id, result))
                except HodeiError as err:
                    outcomes.append(err)
        if self.tracing:
            for result, outcome in zip(results, outcomes, strict=True):
                if isinstance(outcome, JobRecord) and result.trace_context:
                    result_span(result, outcome, began)
        return outcomes

    async def _finish_checked(
        self, worker_id: uuid.UUID, result: AttemptResult
    ) -> JobRecord | None:
        """Why the fenced result matched nothing: an error, a repeat, missing lines."""
        async with self.db.transaction() as tx:
            job = await lock_job(tx, result.ref.job_id)
            fence(job, worker_id, result.ref.attempt)
            if job.state.is_final:
                return job
            if job.attempt_lines < result.total_lines:
                return None
            if not job.state.is_active:
                raise StaleAttempt(f"job {job.id} is {job.state}, not running on {worker_id}")
            if job.state == JobState.ASSIGNED and result.started_at is not None:
                job = await _start_locked(tx, job, worker_id, result.started_at)
            finished = await finish_locked(
                tx, job, result.state, result.exit_code, result.error, f"worker:{worker_id}"
            )
            if result.lines_read is not None:
                await tx.execute(
                    "record_output_read",
                    {"id": job.id, "lines": result.lines_read, "bytes": result.bytes_read},
                )
            return finished


async def _start_locked(
    tx: Tx, job: JobRecord, worker_id: uuid.UUID, started_at: datetime | None
) -> JobRecord:
    """ASSIGNED -> RUNNING of a job locked by the caller, with its JobStarted event."""
    row = await tx.one(
        "start_job", {"id": job.id, "worker_id": worker_id, "started_at": started_at}
    )
    assert row is not None
    await record(
        tx, [_start_event(AttemptRef(job.id, job.attempts), worker_id, job.correlation_id)]
    )
    return JobRecord.from_row(row)


def result_span(result: AttemptResult, job: JobRecord, began: int) -> None:
    """The span of recording an attempt's result: a child of the worker's RunJob span,
    from the moment its group statement began (one statement records many)."""
    span = tracer.start_span(
        "result",
        context=context_of(result.trace_context),
        start_time=began,
        attributes={
            **job_attributes(job.id, job.correlation_id, result.ref.attempt, job.worker_id),
            "hodei.state": str(job.state),
        },
    )
    if job.exit_code is not None:
        span.set_attribute("hodei.exit_code", job.exit_code)
    if job.state != JobState.SUCCEEDED:
        span.set_status(StatusCode.ERROR, job.error or str(job.state))
    span.end()
