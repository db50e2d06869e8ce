"""The adaptive prefetch rule (hodei.domain.prefetch)."""

from __future__ import annotations

from hodei.domain.prefetch import MAX_PREFETCH, WAIT_S, PrefetchGauge, wanted_prefetch


def test_what_the_slots_get_through_in_the_wait() -> None:
    assert wanted_prefetch(4, 0.010) == min(40, MAX_PREFETCH)
    assert wanted_prefetch(4, 0.100) == round(4 * WAIT_S / 0.100)
    assert wanted_prefetch(1, 1.0) == 0  # long jobs: none held
    assert wanted_prefetch(64, 0.001) == MAX_PREFETCH
    assert wanted_prefetch(4, 0.0) == MAX_PREFETCH


def test_the_gauge_says_only_changes_worth_a_message() -> None:
    gauge = PrefetchGauge(slots=4, current=4)
    assert gauge.job_ended(0.005) == MAX_PREFETCH  # short jobs: up at once
    assert gauge.job_ended(0.005) is None  # the same again: nothing to say
    # Slightly longer runs move the average a little: under half as much again, quiet.
    assert gauge.job_ended(0.006) is None
    # Long jobs bring it down, to none in the end.
    said = [gauge.job_ended(1.0) for _ in range(30)]
    assert [n for n in said if n is not None][-1] == 0
    assert gauge.current == 0


def test_a_first_run_of_zero_seconds_is_not_a_division_by_zero() -> None:
    assert PrefetchGauge(slots=1, current=1).job_ended(0.0) == MAX_PREFETCH
