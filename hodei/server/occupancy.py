"""Keeps a worker's slot bookkeeping (running_jobs, READY/BUSY, current_job_id) in
step with the jobs it holds, inside the caller's transaction.

The hot paths (dispatch, a worker's result) do the same bookkeeping inside their
one-statement transitions in queries.sql (`dispatch_jobs`, `finish_jobs_fenced`);
this recount serves the rarer ones (requeue, cancel, timeouts) and heals any drift."""

from __future__ import annotations

import uuid

from hodei.db.connector import Tx
from hodei.domain.events import EventType
from hodei.domain.workers import WorkerState, occupancy_state
from hodei.server.events import Event, worker_event


async def sync_worker(tx: Tx, worker_id: uuid.UUID, actor: str) -> list[Event]:
    """Recount the worker's ASSIGNED/RUNNING jobs and move it READY <-> BUSY to match.

    Callers lock job rows before calling this (lock order: queue, job, worker), and
    record the returned events in the same transaction.
    """
    worker = await tx.one("lock_worker_with_jobs", {"id": worker_id})
    if worker is None:
        return []
    running = int(worker["active"])
    state = WorkerState(worker["state"])
    new_state = state
    if state in (WorkerState.READY, WorkerState.BUSY):
        new_state = occupancy_state(running, worker["slots"] + worker["prefetch"])
    current = worker["first_job"]
    if (
        new_state == state
        and running == worker["running_jobs"]
        and current == worker["current_job_id"]
    ):
        return []
    await tx.execute(
        "update_worker",
        {
            "id": worker_id,
            "state": str(new_state),
            "running_jobs": running,
            "current_job_id": current,
        },
    )
    if new_state == state:
        return []
    return [_occupancy_event(worker_id, state, new_state, running, actor)]


def _occupancy_event(
    worker_id: uuid.UUID, previous: WorkerState, state: WorkerState, running: int, actor: str
) -> Event:
    event_type = EventType.WORKER_BUSY if state == WorkerState.BUSY else EventType.WORKER_READY
    return worker_event(event_type, worker_id, actor, running_jobs=running, previous=str(previous))
