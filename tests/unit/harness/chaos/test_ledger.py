"""The chaos ledger: what counts as a command run twice."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.chaos.ledger import Ledger, ledger_command


def write(path: Path, *lines: str) -> Ledger:
    path.write_text("".join(f"{line}\n" for line in lines))
    return Ledger.read(path)


def test_the_command_records_its_start_and_end_with_its_identity(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    env = {"HODEI_JOB_ID": "j1", "HODEI_JOB_ATTEMPT": "2", "PATH": "/usr/bin:/bin"}
    subprocess.run(ledger_command(path, 0.01), env=env, check=True)
    ledger = Ledger.read(path)
    assert [(r.mark, r.attempt) for r in ledger.runs["j1"]] == [("start", 2), ("end", 2)]
    assert ledger.ended("j1") == 1


def test_a_retry_after_a_killed_worker_is_not_a_double_run(tmp_path: Path) -> None:
    ledger = write(tmp_path / "l", "start j 1 100", "start j 2 200", "end j 2 200")
    assert ledger.ran_twice(killed_workers={100}) == []
    # The same lines when nobody killed worker 100: the job ran twice.
    assert ledger.ran_twice() == ["j"]


def test_a_start_orphaned_at_birth_counts_as_killed_only_in_a_killing_trial(
    tmp_path: Path,
) -> None:
    # Parent pid 1: its worker died while spawning it.
    ledger = write(tmp_path / "l", "start j 1 1", "start j 2 200", "end j 2 200")
    assert ledger.ran_twice(killed_workers={100}) == []
    assert ledger.ran_twice() == ["j"]


def test_finishing_twice_is_a_double_run_whatever_was_killed(tmp_path: Path) -> None:
    ledger = write(
        tmp_path / "l", "start j 1 100", "end j 1 100", "start j 2 200", "end j 2 200", "junk"
    )
    assert ledger.ran_twice(killed_workers={100}) == ["j"]


def test_one_run_is_fine_and_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert write(tmp_path / "l", "start j 1 100", "end j 1 100").ran_twice() == []
    assert Ledger.read(tmp_path / "absent").runs == {}
