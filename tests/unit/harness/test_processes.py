"""harness.processes against real processes: a zombie is not alive, children are found."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from harness.processes import alive, children, cpu_seconds, memory_kib, process_state, reap


def test_a_running_child_is_alive_and_listed_then_its_zombie_is_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    try:
        assert alive(child.pid)
        assert child.pid in children(os.getpid())
    finally:
        assert child.stdin is not None
        child.stdin.close()
    deadline = time.monotonic() + 5
    while process_state(child.pid) != "Z":  # finished, not reaped yet
        assert time.monotonic() < deadline, f"state {process_state(child.pid)}"
        time.sleep(0.01)
    assert not alive(child.pid)
    reap(child.pid)
    assert process_state(child.pid) is None and not alive(child.pid)
    assert cpu_seconds(child.pid) == 0.0


def test_this_process_has_cpu_time_and_memory() -> None:
    sum(range(200_000))
    assert cpu_seconds(os.getpid()) > 0
    assert memory_kib(os.getpid())["VmRSS"] > 0
