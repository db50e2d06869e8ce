"""Worker states and their transitions."""

from __future__ import annotations

import enum

from hodei.errors import InvalidTransition


class WorkerState(enum.StrEnum):
    CREATING = "CREATING"  # registered, stream not open yet: not assignable
    READY = "READY"  # stream open, at least one free slot
    BUSY = "BUSY"  # stream open, every slot taken
    DRAINING = "DRAINING"  # finishing its jobs, takes no new ones
    TERMINATED = "TERMINATED"
    LOST = "LOST"  # heartbeats stopped

    @property
    def is_gone(self) -> bool:
        return self in (WorkerState.TERMINATED, WorkerState.LOST)


_WORKER_TRANSITIONS: dict[WorkerState, frozenset[WorkerState]] = {
    WorkerState.CREATING: frozenset({WorkerState.READY, WorkerState.TERMINATED, WorkerState.LOST}),
    WorkerState.READY: frozenset(
        {WorkerState.BUSY, WorkerState.DRAINING, WorkerState.TERMINATED, WorkerState.LOST}
    ),
    WorkerState.BUSY: frozenset(
        {WorkerState.READY, WorkerState.DRAINING, WorkerState.TERMINATED, WorkerState.LOST}
    ),
    WorkerState.DRAINING: frozenset({WorkerState.TERMINATED, WorkerState.LOST}),
    WorkerState.TERMINATED: frozenset(),
    # A LOST worker whose stream comes back (network blip, server restart) is
    # taken back rather than stranded; its superseded attempts are fenced off.
    WorkerState.LOST: frozenset({WorkerState.READY, WorkerState.TERMINATED}),
}


def can_transition(current: WorkerState, target: WorkerState) -> bool:
    return target in _WORKER_TRANSITIONS[current]


def check_transition(current: WorkerState, target: WorkerState) -> None:
    if not can_transition(current, target):
        raise InvalidTransition(f"worker cannot go from {current} to {target}")


def occupancy_state(running: int, slots: int) -> WorkerState:
    """READY while a slot is free, BUSY when all are taken."""
    return WorkerState.BUSY if running >= slots else WorkerState.READY
