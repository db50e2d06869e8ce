"""Keeps a worker's slot bookkeeping (running_jobs, READY/BUSY, current_job_id) in
step with the jobs it holds, inside the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

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
        new_state = occupancy_state(running, worker["slots"])
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


async def add_assignments(
    tx: Tx, workers: list[dict[str, Any]], assigned: dict[uuid.UUID, list[uuid.UUID]], actor: str
) -> list[Event]:
    """The dispatcher's batch version of sync_worker: `workers` are the rows it locked,
    `assigned` the jobs it just gave each of them. One statement for all workers."""
    ids, states, running, current, events = [], [], [], [], []
    for worker in workers:
        jobs = assigned.get(worker["id"])
        if not jobs:
            continue
        previous = WorkerState(worker["state"])
        count = worker["running_jobs"] + len(jobs)
        state = occupancy_state(count, worker["slots"])
        ids.append(worker["id"])
        states.append(str(state))
        running.append(count)
        current.append(worker["current_job_id"] or jobs[0])
        if state != previous:
            events.append(_occupancy_event(worker["id"], previous, state, count, actor))
    if ids:
        await tx.execute(
            "set_worker_occupancy",
            {"ids": ids, "states": states, "running": running, "current": current},
        )
    return events
