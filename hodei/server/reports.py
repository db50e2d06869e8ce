"""A worker's JobStarted and JobResult reports, applied several at a time.

Under load one worker stream carries several reports between two reads of the server.
Applying each in its own statement and commit was the largest per-job cost, so the
reports read together are applied by one fenced statement per kind
(queries.sql `start_jobs_fenced`, `finish_jobs_fenced`): the job rows, the worker's
occupancy, the events and their outbox rows, all or nothing. On an idle platform a
batch is one report, and the same statement runs with arrays of one.

A report the statement does not match (a superseded attempt, a repeat after a
reconnect, a result whose lines are still in flight, a refused transition) takes the
locked one-at-a-time path of `JobService`, which names the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from hodei.db.connector import Database
from hodei.domain.events import EventType, event_for_job_state
from hodei.domain.jobs import ACTIVE_JOB_STATES, JobState, can_transition
from hodei.errors import HodeiError
from hodei.server.events import job_event
from hodei.server.models import AttemptRef, JobRecord


@dataclass(frozen=True, slots=True)
class ResultReport:
    """What a worker said about an attempt's end."""

    ref: AttemptRef
    state: JobState
    exit_code: int | None
    error: str
    total_lines: int = 0


#: What became of one report: the job after it; None for a result whose lines are not
#: all persisted yet (nothing changed); or the error that refused it.
StartOutcome = JobRecord | HodeiError
FinishOutcome = JobRecord | None | HodeiError


def sources(target: JobState, among: Iterable[JobState] = tuple(JobState)) -> list[str]:
    """The states from which the domain allows `target`: the guard of a one-statement
    transition, so that the rule stays in hodei.domain.jobs."""
    return [str(s) for s in among if can_transition(s, target)]


async def start_fenced(
    db: Database, worker_id: uuid.UUID, refs: Sequence[AttemptRef]
) -> dict[AttemptRef, JobRecord]:
    """ASSIGNED -> RUNNING for every ref this worker holds, in one statement. Returns
    the refs it applied; the others changed nothing."""
    actor = f"worker:{worker_id}"
    payloads = [
        Jsonb(
            job_event(
                EventType.JOB_STARTED,
                ref.job_id,
                actor,
                state=str(JobState.RUNNING),
                attempt=ref.attempt,
                worker_id=worker_id,
            ).payload
        )
        for ref in refs
    ]
    async with db.connection() as tx:
        rows = await tx.all(
            "start_jobs_fenced",
            {
                "ids": [ref.job_id for ref in refs],
                "attempts": [ref.attempt for ref in refs],
                "payloads": payloads,
                "worker_id": worker_id,
                "from_states": sources(JobState.RUNNING),
                "event_type": str(EventType.JOB_STARTED),
                "actor": actor,
            },
        )
    return _by_ref(rows)


async def finish_fenced(
    db: Database, worker_id: uuid.UUID, reports: Sequence[ResultReport]
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
        for r in reports
    ]
    async with db.connection() as tx:
        rows = await tx.all(
            "finish_jobs_fenced",
            {
                "ids": [r.ref.job_id for r in reports],
                "attempts": [r.ref.attempt for r in reports],
                "states": [str(r.state) for r in reports],
                "exit_codes": [r.exit_code for r in reports],
                "errors": [r.error for r in reports],
                "total_lines": [r.total_lines for r in reports],
                "sources": [",".join(sources(r.state, among=ACTIVE_JOB_STATES)) for r in reports],
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
    one report at a time can get past (a deadlock with another multi-row writer, a
    serialization failure): every report then takes the locked path."""
    try:
        return await fenced
    except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
        return {}
