"""Facts about processes read from /proc (Linux): is it alive, its children, its CPU
time and memory. The one copy used by the launchers, the tests and the benchmarks,
so that nobody needs psutil.

`alive` means "exists and is not a zombie": a zombie has finished, only its parent
has not reaped it yet, and every caller here wants to know whether it still runs.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from harness.waits import wait_until, wait_until_async

_PROC = Path("/proc")
#: Clock ticks per second, the unit of utime and stime in /proc/<pid>/stat.
_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...), or
    None when the process is gone. The name is in parentheses and may hold spaces and
    parentheses itself, so the split is at the last ')'."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def process_state(pid: int) -> str | None:
    """The state letter ("R", "S", "Z", ...) of `pid`, or None when it is gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    return process_state(pid) not in (None, "Z")


def reap(pid: int) -> None:
    """Collect `pid`'s exit status if it is a finished child of this process, so that
    it does not linger as a zombie; anything else is left alone."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def children(pid: int) -> list[int]:
    """Direct children of `pid` that still exist."""
    found: list[int] = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def processes_mentioning(text: str) -> list[int]:
    """Processes whose command line contains `text`."""
    found: list[int] = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` (0 if it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of `pid`, in KiB."""
    out: dict[str, int] = {}
    for line in (_PROC / str(pid) / "status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def wait_gone(pid: int, timeout_s: float = 5.0) -> None:
    """Block until `pid` has ended; WaitTimeout (naming it) when it still runs."""
    wait_until(f"process {pid} to end", lambda: not alive(pid), timeout_s, poll_s=0.02)


async def wait_gone_async(pid: int, timeout_s: float = 5.0) -> None:
    """`wait_gone` without blocking the event loop."""
    await wait_until_async(f"process {pid} to end", lambda: not alive(pid), timeout_s, 0.02)
