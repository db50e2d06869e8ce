"""Worker states and their transitions."""

from __future__ import annotations

import enum

from hodei.errors import InvalidArgument, InvalidTransition

#: Concurrent jobs one worker may declare (Register and Hello).
MAX_SLOTS = 1024


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


def check_slots(slots: int, *, zero_means: int | None = 1) -> int:
    """The slots a worker declared, checked before anything reaches the database (a
    uint32 over PostgreSQL's integer was a NumericValueOutOfRange traceback).
    0 means `zero_means` (Register: 1; Hello: None, keep the registered number)."""
    if slots == 0 and zero_means is None:
        return 0
    slots = slots or zero_means or 1
    if not 1 <= slots <= MAX_SLOTS:
        raise InvalidArgument(f"slots is {slots}; it must be between 1 and {MAX_SLOTS}")
    return slots


def occupancy_state(running: int, slots: int) -> WorkerState:
    """READY while a slot is free, BUSY when all are taken."""
    return WorkerState.BUSY if running >= slots else WorkerState.READY


class SilenceWatch:
    """When a server may call a silent worker LOST: only once it has watched the
    database itself, without a break, for a whole miss window.

    A stale last_heartbeat proves silence only if some server could have stored the
    heartbeats. After this server starts, and after a break in its own contact with
    the database (an outage, or a stall long enough that heartbeats may have gone
    unrecorded), that is not known until a full window has passed. `reached(now)` is
    called at each successful contact, with a monotonic clock; it says whether silence
    may be judged now.
    """

    def __init__(self, window_s: float, break_after_s: float) -> None:
        self.window_s = window_s
        #: A gap between two contacts longer than this counts as a break.
        self.break_after_s = break_after_s
        self._since: float | None = None
        self._last: float | None = None

    def interrupt(self) -> None:
        """A break seen another way (a heartbeat that could not be stored): the window
        starts again at the next contact."""
        self._since = None

    def reached(self, now: float) -> bool:
        if self._since is None or self._last is None or now - self._last > self.break_after_s:
            self._since = now
        self._last = now
        return now - self._since >= self.window_s
