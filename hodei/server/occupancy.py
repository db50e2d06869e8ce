"""Keeps a worker's slot bookkeeping (running_jobs, READY/BUSY, current_job_id) in
step with the jobs it holds, inside the caller's transaction."""

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
    worker = await tx.one("lock_worker", {"id": worker_id})
    if worker is None:
        return []
    jobs = await tx.all("worker_jobs", {"worker_id": worker_id})
    running = len(jobs)
    state = WorkerState(worker["state"])
    new_state = state
    if state in (WorkerState.READY, WorkerState.BUSY):
        new_state = occupancy_state(running, worker["slots"])
    current = jobs[0]["id"] if jobs else None
    if (
        new_state == state
        and running == worker["running_jobs"]
        and current == worker["current_job_id"]
    ):
        return []
    await tx.one(
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
    event_type = EventType.WORKER_BUSY if new_state == WorkerState.BUSY else EventType.WORKER_READY
    return [worker_event(event_type, worker_id, actor, running_jobs=running, previous=str(state))]
