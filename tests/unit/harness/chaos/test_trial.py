"""The chaos table and its targets."""

from __future__ import annotations

from harness.chaos.trial import Trial, markdown_table, missed_targets


def test_rows_add_up_trials_and_take_the_median_recovery() -> None:
    trials = [
        Trial("worker SIGKILL mid-job", "short", jobs=16, recovery_s=[3.0]),
        Trial("worker SIGKILL mid-job", "short", jobs=16, recovery_s=[5.0]),
        Trial("worker SIGKILL mid-job", "short", jobs=16, recovery_s=[4.0]),
        Trial("server SIGKILL under a burst", "short", jobs=1000, duplicates=2),
    ]
    table = markdown_table(trials).splitlines()
    assert table[2] == "| worker SIGKILL mid-job | short | 3 | 48 | 0 | 0 | 0 | 4.0 s | 5.0 s | 0 |"
    assert table[3].startswith("| server SIGKILL under a burst | short | 1 | 1000 | 0 | 0 | 2 |")


def test_every_target_missed_is_named() -> None:
    trials = [
        Trial("worker SIGKILL mid-job", "default", jobs=16, ran_twice=1, recovery_s=[50.0]),
        Trial("PostgreSQL restart", "default", jobs=10, lost=1, tracebacks=3),
    ]
    assert missed_targets(trials, 15.0) == [
        "worker SIGKILL mid-job [default]: 1 ran twice",
        "worker SIGKILL mid-job [default]: recovery p50 50.0 s > 3 x 15 s",
        "PostgreSQL restart [default]: 1 lost",
        "PostgreSQL restart [default]: 3 tracebacks",
    ]
    assert missed_targets([Trial("two server replicas", "short", jobs=5)], 1.5) == []
