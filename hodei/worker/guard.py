"""The job guard: a small process that outlives a killed worker just long enough to
kill its jobs.

A worker that is SIGKILLed (or crashes) cannot stop its jobs: their processes run on,
re-parented to init, while the server, once the worker's heartbeats stop, gives the
jobs to other workers, so the same job runs twice. The worker therefore starts this
guard when it starts, and tells it over a pipe the process group of every job it
starts (`+PGID`) and of every job it is done with (`-PGID`). The guard only reads;
when the pipe ends, which happens however the worker goes (the kernel closes a dead
process's descriptors), it SIGKILLs the groups still registered and exits. A worker
that stops normally has stopped its jobs already and leaves nothing registered.

Why a process and not PR_SET_PDEATHSIG: the death signal reaches only the direct child,
and setting it needs code in the child before exec (a preexec_fn, unsafe beside gRPC's
threads and impossible with posix_spawn); a group kill also reaches grandchildren.
The write end of the pipe is close-on-exec, so no job holds it open.

A worker killed while it spawns a job (inside posix_spawn: the child exists, its pid
is not registered yet) would leave that job running: the chaos suite caught one such
job, run twice. So the worker first says `?N` (spawn N begins) and gives the job the
variable HODEI_JOB_GUARD=<token>.N, then `+PGID N`. At the end the guard also kills any
process whose environment holds the marker of a spawn it never heard finish.

    python -m hodei.worker.guard   (started by the worker; reads stdin until EOF)
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys

logger = logging.getLogger(__name__)

#: The variable that marks a job with the spawn that started it (see above).
MARKER_ENV = "HODEI_JOB_GUARD"


class JobGuard:
    """The worker's end: start the guard, register and release job process groups."""

    def __init__(self, proc: subprocess.Popen[bytes], token: str) -> None:
        assert proc.stdin is not None
        self._proc = proc
        self._fd = proc.stdin.fileno()
        self._broken = False
        self.token = token
        self._spawns = 0

    @classmethod
    def start(cls) -> JobGuard | None:
        """None (with a warning) when the guard cannot be started: the worker runs on."""
        try:
            token = secrets.token_hex(8)
            proc = subprocess.Popen(
                [sys.executable, "-m", "hodei.worker.guard", token],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                # Its own session: a Ctrl-C or a signal to the worker's group does not
                # reach it; it ends when the pipe does.
                start_new_session=True,
            )
        except OSError as exc:
            logger.warning(
                "job guard not started (%s): the jobs of a killed worker will run on", exc
            )
            return None
        return cls(proc, token)

    def begin_spawn(self) -> tuple[int, dict[str, str]]:
        """Before a spawn: its number, and the variable the job must carry."""
        self._spawns += 1
        self._send(f"?{self._spawns}\n")
        return self._spawns, {MARKER_ENV: f"{self.token}.{self._spawns}"}

    def track(self, pgid: int, spawn: int | None = None) -> None:
        self._send(f"+{pgid}\n" if spawn is None else f"+{pgid} {spawn}\n")

    def release(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def _send(self, line: str) -> None:
        if self._broken:
            return
        try:
            # A few bytes to a pipe the guard drains: does not block in practice.
            os.write(self._fd, line.encode())
        except OSError as exc:
            self._broken = True
            logger.warning("job guard gone (%s): the jobs of a killed worker will run on", exc)

    def close(self, seconds: float = 5.0) -> None:
        """Normal shutdown: end the pipe (nothing should be registered) and reap it."""
        assert self._proc.stdin is not None
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        try:
            self._proc.wait(seconds)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def guard(stream: int = 0, token: str = "") -> int:
    """The guard process: read registrations from `stream` until EOF, then kill the
    groups still registered, and the jobs of spawns begun but never registered.
    Returns how many groups it signalled."""
    live: set[int] = set()
    spawning: set[bytes] = set()
    pending = b""
    while chunk := os.read(stream, 4096):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if line[:1] == b"?":
                spawning.add(line[1:])
            elif line[:1] == b"+":
                group, _, spawn = line[1:].partition(b" ")
                live.add(int(group))
                spawning.discard(spawn)
            elif line[:1] == b"-":
                live.discard(int(line[1:]))
    if token:
        markers = {f"{MARKER_ENV}={token}.".encode() + n for n in spawning}
        live.update(_marked_processes(markers))
    killed = 0
    for pgid in live:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
            killed += 1
    return killed


def _marked_processes(markers: set[bytes]) -> set[int]:
    """Process groups of the processes whose environment holds one of `markers`."""
    found: set[int] = set()
    if not markers:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read().split(b"\0")
            if markers.intersection(environ):
                found.add(os.getpgid(int(entry)))
        except OSError:
            continue  # gone, or not ours
    return found


if __name__ == "__main__":
    killed = guard(0, sys.argv[1] if len(sys.argv) > 1 else "")
    if killed:
        print(
            f"hodei job guard: the worker went away; killed {killed} job group(s)", file=sys.stderr
        )
    sys.exit(0)
