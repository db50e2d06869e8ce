"""The job guard (hodei.worker.guard) as a real process: when its pipe ends, the job
process groups still registered are killed, grandchildren included; released ones
are left alone."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from harness.processes import alive, wait_gone
from harness.waits import wait_until
from hodei.worker.guard import JobGuard
from hodei.worker.spawn import Child, spawn


def _group_with_grandchild(tmp_path: Path, name: str) -> tuple[Child, int]:
    """A job-like process group: a shell that starts a background sleep and waits."""
    pid_file = tmp_path / name
    child = spawn(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], dict(os.environ))
    wait_until(
        "the job to start its grandchild",
        lambda: pid_file.exists() and pid_file.read_text().strip(),
        timeout_s=5,
        poll_s=0.02,
    )
    return child, int(pid_file.read_text())


def test_the_end_of_the_pipe_kills_the_registered_groups_only(tmp_path: Path) -> None:
    guard = JobGuard.start()
    assert guard is not None
    kept, kept_grandchild = _group_with_grandchild(tmp_path, "kept")
    killed, killed_grandchild = _group_with_grandchild(tmp_path, "killed")
    try:
        guard.track(kept.pid)
        guard.track(killed.pid)
        guard.release(kept.pid)  # finished with: not the guard's any more
        guard.close()  # the pipe ends, as it does when the worker is killed
        wait_gone(killed.pid)
        wait_gone(killed_grandchild)
        assert alive(kept.pid) and alive(kept_grandchild)
    finally:
        for pid in (kept.pid, killed.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        for child in (kept, killed):
            child.wait()
            os.close(child.stdout)
            os.close(child.stderr)


def test_a_job_spawned_but_never_registered_is_killed_too(tmp_path: Path) -> None:
    # A worker SIGKILLed inside posix_spawn: the job exists, its "+PGID" was never
    # written. The marker it carries in its environment gives it away.
    guard = JobGuard.start()
    assert guard is not None
    spawn_number, marker = guard.begin_spawn()
    pid_file = tmp_path / "orphan"
    child = spawn(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], {**os.environ, **marker})
    other = spawn(["sleep", "60"], dict(os.environ))  # no marker: not the guard's
    try:
        wait_until("the grandchild", lambda: pid_file.exists() and pid_file.read_text(), 5)
        assert spawn_number == 1
        guard.close()
        wait_gone(child.pid)
        wait_gone(int(pid_file.read_text()))
        assert alive(other.pid)
    finally:
        for pid in (child.pid, other.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        for each in (child, other):
            each.wait()
            os.close(each.stdout)
            os.close(each.stderr)
