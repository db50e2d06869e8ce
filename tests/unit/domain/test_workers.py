"""Domain rules for workers: the state machine and slot occupancy (no I/O)."""

from __future__ import annotations

import itertools

import pytest

from hodei.domain.workers import WorkerState, can_transition, check_transition, occupancy_state
from hodei.errors import InvalidTransition


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
