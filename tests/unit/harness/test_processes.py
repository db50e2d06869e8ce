"""harness.processes against real processes: a zombie is not alive, children are found."""

from __future__ import annotations

import os
import subprocess
import sys

from harness.processes import alive, children, cpu_seconds, memory_kib, process_state, reap
from harness.waits import wait_until


def test_a_running_child_is_alive_and_listed_then_its_zombie_is_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    try:
        assert alive(child.pid)
        assert child.pid in children(os.getpid())
    finally:
        assert child.stdin is not None
        child.stdin.close()
    # Finished, not reaped yet.
    wait_until("the child to be a zombie", lambda: process_state(child.pid) == "Z", 5, 0.01)
    assert not alive(child.pid)
    reap(child.pid)
    assert process_state(child.pid) is None and not alive(child.pid)
    assert cpu_seconds(child.pid) == 0.0


def test_this_process_has_cpu_time_and_memory() -> None:
    sum(range(200_000))
    assert cpu_seconds(os.getpid()) > 0
    assert memory_kib(os.getpid())["VmRSS"] > 0
