"""Domain rules for workers: the state machine and slot occupancy (no I/O)."""

from __future__ import annotations

import itertools

import pytest

from hodei.domain.workers import (
    MAX_SLOTS,
    SilenceWatch,
    WorkerState,
    can_transition,
    check_slots,
    check_transition,
    occupancy_state,
)
from hodei.errors import InvalidArgument, InvalidTransition


def test_worker_lifecycle() -> None:
    path = [WorkerState.CREATING, WorkerState.READY, WorkerState.BUSY, WorkerState.READY]
    for current, target in itertools.pairwise(path):
        check_transition(current, target)
    check_transition(WorkerState.READY, WorkerState.DRAINING)
    check_transition(WorkerState.DRAINING, WorkerState.TERMINATED)


def test_creating_worker_cannot_be_busy() -> None:
    # Not assignable before its stream said Hello: the original marked it ready too early.
    assert not can_transition(WorkerState.CREATING, WorkerState.BUSY)


def test_lost_worker_can_come_back_but_terminated_cannot() -> None:
    assert can_transition(WorkerState.LOST, WorkerState.READY)
    for target in WorkerState:
        with pytest.raises(InvalidTransition):
            check_transition(WorkerState.TERMINATED, target)


@pytest.mark.parametrize(
    ("running", "slots", "expected"),
    [
        (0, 1, WorkerState.READY),
        (1, 1, WorkerState.BUSY),
        (1, 2, WorkerState.READY),
        (3, 2, WorkerState.BUSY),
    ],
)
def test_occupancy(running: int, slots: int, expected: WorkerState) -> None:
    assert occupancy_state(running, slots) == expected


def test_gone_states() -> None:
    assert WorkerState.LOST.is_gone and WorkerState.TERMINATED.is_gone
    assert not WorkerState.READY.is_gone


def test_silence_is_judged_only_after_a_whole_window_without_a_break() -> None:
    watch = SilenceWatch(window_s=15.0, break_after_s=3.0)

    def sweeps(start: float, end: float) -> list[bool]:
        """Contacts every second from `start` to `end` (both included)."""
        return [watch.reached(start + i) for i in range(int(end - start) + 1)]

    # A server that just started: old heartbeats prove nothing for 15 s.
    first = sweeps(100.0, 116.0)
    assert first[:15] == [False] * 15 and first[15:] == [True, True]
    # The database went away for 10 s (no contact): a new window starts when it is back.
    back = sweeps(126.0, 142.0)
    assert back[:15] == [False] * 15 and back[15:] == [True, True]
    # A gap within the break limit is an ordinary slow sweep.
    assert watch.reached(145.0)
    # A break seen another way (a heartbeat that could not be stored), however short.
    watch.interrupt()
    after = sweeps(146.0, 162.0)
    assert after[:15] == [False] * 15 and after[15:] == [True, True]


def test_slots_are_bounded_the_same_for_register_and_hello() -> None:
    assert check_slots(0) == 1  # Register: 0 means one slot
    assert check_slots(0, zero_means=None) == 0  # Hello: 0 keeps the registered number
    assert check_slots(MAX_SLOTS) == MAX_SLOTS
    for zero_means in (1, None):
        with pytest.raises(InvalidArgument) as info:
            check_slots(2**32 - 1, zero_means=zero_means)
        assert str(info.value) == f"slots is 4294967295; it must be between 1 and {MAX_SLOTS}"
