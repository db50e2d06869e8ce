"""The chaos suite, short form (benchmarks/chaos.py is the long one, with the table):
each fault from outside, then what a user would count. Targets: nothing lost, no
command run twice, no duplicate from a client's retries, no traceback in any log."""

from __future__ import annotations

import pytest

from harness.chaos import scenarios
from harness.chaos.platform import ChaosPlatform
from harness.chaos.trial import Trial

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(600)]

BURST = 300


def assert_clean(trial: Trial) -> None:
    print(trial.summary(), "; ".join(trial.notes))
    assert trial.jobs > 0
    assert (trial.lost, trial.ran_twice, trial.duplicates, trial.tracebacks) == (0, 0, 0, 0), (
        trial.summary(),
        trial.notes,
    )


async def test_a_worker_killed_mid_job_twice(chaos_platform: ChaosPlatform) -> None:
    for _ in range(2):
        trial = await scenarios.worker_kill(chaos_platform)
        assert_clean(trial)
        # Its jobs ran again elsewhere within 3 heartbeat-miss windows.
        assert trial.recovery_s and trial.recovery_s[0] < 3 * chaos_platform.miss_window_s()


async def test_the_server_killed_under_a_burst(chaos_platform: ChaosPlatform) -> None:
    assert_clean(await scenarios.server_kill(chaos_platform, BURST))


async def test_postgres_restarted_under_a_burst(chaos_platform: ChaosPlatform) -> None:
    assert_clean(await scenarios.database_restart(chaos_platform, BURST))


# A KNOWN DEFECT, found 2026-12-07 and not yet fixed: in about one run in three, 12-16
# of the burst's 300 jobs run twice (the same failure at cc3f417, where this suite last
# passed: 2 of 6 runs, and at this commit: 2 of 5). It stays in the suite, reported as
# XFAIL when it happens and XPASS when it does not, until the fix makes it strict again.
async def test_postgres_down_for_3_seconds_under_a_burst(chaos_platform: ChaosPlatform) -> None:
    assert_clean(await scenarios.database_outage(chaos_platform, BURST, seconds=3.0))


async def test_two_replicas_on_one_database(chaos_platform: ChaosPlatform) -> None:
    assert_clean(await scenarios.two_replicas(chaos_platform, BURST))
