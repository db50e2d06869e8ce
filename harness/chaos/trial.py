"""One chaos trial's figures, and the table the suite prints (Markdown)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Trial:
    scenario: str
    profile: str  # "short" (the harness's settings) or "default"
    #: Logical submissions (one per job the client meant to create).
    jobs: int = 0
    #: Submissions that did not end as exactly one SUCCEEDED job: never created,
    #: refused after the client's retries, or finished in another state.
    lost: int = 0
    #: Jobs whose command ran more than once without a worker of theirs being killed.
    ran_twice: int = 0
    #: Extra jobs created for one submission (a retried QueueJob that created twice).
    duplicates: int = 0
    #: Seconds from the end of the fault to the platform finishing jobs again (worker
    #: kill: from the kill to the SUCCEEDED of the jobs it held).
    recovery_s: list[float] = field(default_factory=list)
    tracebacks: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.ran_twice or self.duplicates or self.tracebacks)

    def summary(self) -> str:
        recovery = ", ".join(f"{r:.1f}" for r in self.recovery_s) or "-"
        return (
            f"{self.scenario} [{self.profile}]: {self.jobs} jobs, {self.lost} lost, "
            f"{self.ran_twice} ran twice, {self.duplicates} duplicates, recovery {recovery} s, "
            f"{self.tracebacks} tracebacks"
        )


@dataclass
class Row:
    scenario: str
    profile: str
    trials: int
    jobs: int
    lost: int
    ran_twice: int
    duplicates: int
    recovery_p50: float | None
    recovery_max: float | None
    tracebacks: int


def rows(trials: Iterable[Trial]) -> list[Row]:
    grouped: dict[tuple[str, str], list[Trial]] = {}
    for trial in trials:
        grouped.setdefault((trial.scenario, trial.profile), []).append(trial)
    out = []
    for (scenario, profile), group in grouped.items():
        recovery = [r for t in group for r in t.recovery_s]
        out.append(
            Row(
                scenario=scenario,
                profile=profile,
                trials=len(group),
                jobs=sum(t.jobs for t in group),
                lost=sum(t.lost for t in group),
                ran_twice=sum(t.ran_twice for t in group),
                duplicates=sum(t.duplicates for t in group),
                recovery_p50=statistics.median(recovery) if recovery else None,
                recovery_max=max(recovery) if recovery else None,
                tracebacks=sum(t.tracebacks for t in group),
            )
        )
    return out


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def markdown_table(trials: Iterable[Trial]) -> str:
    lines = [
        "| scenario | settings | trials | jobs | lost | ran twice | duplicates from retries "
        "| recovery p50 | recovery max | tracebacks |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows(trials):
        lines.append(
            f"| {row.scenario} | {row.profile} | {row.trials} | {row.jobs} | {row.lost} "
            f"| {row.ran_twice} | {row.duplicates} | {_seconds(row.recovery_p50)} "
            f"| {_seconds(row.recovery_max)} | {row.tracebacks} |"
        )
    return "\n".join(lines)


def missed_targets(trials: Iterable[Trial], miss_window_s: float) -> list[str]:
    """The issue's targets, one line per miss: 0 lost, 0 ran twice, 0 duplicates from
    retries, 0 tracebacks, worker-kill recovery p50 within 3 heartbeat-miss windows."""
    missed = []
    for row in rows(trials):
        where = f"{row.scenario} [{row.profile}]"
        for name, value in (
            ("lost", row.lost),
            ("ran twice", row.ran_twice),
            ("duplicates from retries", row.duplicates),
            ("tracebacks", row.tracebacks),
        ):
            if value:
                missed.append(f"{where}: {value} {name}")
        slow = row.recovery_p50 is not None and row.recovery_p50 > 3 * miss_window_s
        if row.scenario.startswith("worker") and slow:
            missed.append(f"{where}: recovery p50 {row.recovery_p50} s > 3 x {miss_window_s:g} s")
    return missed
