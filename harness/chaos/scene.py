"""One `@chaos` scenario's private platform and its trial, for the (synchronous) BDD
steps: the shared deployment other scenarios use is never broken, and a database
fault never touches a shared PostgreSQL."""

from __future__ import annotations

import asyncio

from harness.chaos import scenarios
from harness.chaos.platform import ChaosPlatform
from harness.chaos.trial import Trial


class ChaosScene:
    def __init__(self) -> None:
        self.platform: ChaosPlatform | None = None
        self.trial: Trial | None = None

    def start(self) -> None:
        """The local launcher's platform, with the harness's short settings."""
        self.platform = asyncio.run(ChaosPlatform.start("short"))

    def _platform(self) -> ChaosPlatform:
        if self.platform is None:
            raise AssertionError("no chaos platform: start it first")
        return self.platform

    def server_kill(self, jobs: int) -> Trial:
        self.trial = asyncio.run(scenarios.server_kill(self._platform(), jobs))
        return self.trial

    def database_restart(self, jobs: int) -> Trial:
        self.trial = asyncio.run(scenarios.database_restart(self._platform(), jobs))
        return self.trial

    def last_trial(self) -> Trial:
        if self.trial is None:
            raise AssertionError("no chaos trial has run in this scenario")
        return self.trial

    def platform_logs(self) -> str:
        return str(self.platform.launcher.log_dir) if self.platform else "<stopped>"

    def close(self) -> None:
        if self.platform is not None:
            asyncio.run(self.platform.stop())
            self.platform = None


def trial_metrics(trial: Trial) -> dict[str, float]:
    """The counts of the chaos suite's table, as the report's scenario metrics."""
    metrics = {
        "chaos_jobs": float(trial.jobs),
        "chaos_lost": float(trial.lost),
        "chaos_ran_twice": float(trial.ran_twice),
        "chaos_retry_duplicates": float(trial.duplicates),
        "chaos_tracebacks": float(trial.tracebacks),
    }
    if trial.recovery_s:
        metrics["chaos_recovery_s"] = round(max(trial.recovery_s), 2)
    return metrics
