"""The ledger: every chaos job appends "start <job> <attempt> <worker pid>" when it
begins and "end <job> <attempt> <worker pid>" when it finishes, to one file per trial.

The file is written by the job processes themselves (short O_APPEND writes, atomic on
Linux), so it records what actually ran, whatever the platform's tables say.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

#: The worker's pid is the job shell's parent ($PPID): it tells a restart after a
#: worker we killed (expected) from a second run of a job nobody killed (a defect).
_LINE = 'echo "{mark} $HODEI_JOB_ID $HODEI_JOB_ATTEMPT $PPID" >> {path}'


def ledger_command(path: Path, seconds: float = 0.0) -> list[str]:
    """A job that records its start, sleeps `seconds`, then records its end."""
    quoted = shlex.quote(str(path))
    steps = [_LINE.format(mark="start", path=quoted)]
    if seconds > 0:
        steps.append(f"sleep {seconds:g}")
    steps.append(_LINE.format(mark="end", path=quoted))
    return ["/bin/sh", "-c", "; ".join(steps)]


@dataclass(frozen=True)
class Run:
    """One line of the ledger."""

    mark: str  # "start" or "end"
    attempt: int
    worker_pid: int


@dataclass
class Ledger:
    runs: dict[str, list[Run]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def read(cls, path: Path) -> Ledger:
        ledger = cls()
        if not path.exists():
            return ledger
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] in ("start", "end"):
                mark, job_id, attempt, pid = parts
                ledger.runs[job_id].append(Run(mark, int(attempt), int(pid)))
        return ledger

    def ended(self, job_id: str) -> int:
        return sum(1 for run in self.runs.get(job_id, []) if run.mark == "end")

    def ran_twice(self, killed_workers: Collection[int] = ()) -> list[str]:
        """Jobs whose command ran more than once without a reason: it finished twice,
        or it started again although the worker of its earlier start was not killed
        (a worker we SIGKILLed takes its job's process with it: a retry is expected)."""
        twice: list[str] = []
        for job_id, runs in self.runs.items():
            starts = sorted((run for run in runs if run.mark == "start"), key=lambda r: r.attempt)
            ends = [run for run in runs if run.mark == "end"]
            unexplained = [run for run in starts[:-1] if not _killed(run, killed_workers)]
            if len(ends) > 1 or unexplained:
                twice.append(job_id)
        return sorted(twice)


def _killed(run: Run, killed_workers: Collection[int]) -> bool:
    """Whether this start's worker was killed: its pid is one we killed, or its shell
    already had init for parent (its worker died while spawning it, in a trial that
    killed workers)."""
    return run.worker_pid in killed_workers or (bool(killed_workers) and run.worker_pid == 1)
