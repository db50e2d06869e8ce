"""Running one job attempt as a child process in its own process group.

Proto-free: the agent turns what happens here into stream messages. The child
gets its own session (setsid, hodei.worker.spawn) so a timeout or a cancel kills
the whole group, grandchildren included, not just the direct child.

The child is started synchronously (hodei.worker.spawn) and reported started at
once; its pipes are read in event-loop callbacks (`_PipeReader`) and its exit is
watched with a pidfd (a thread that waits for it where pidfd_open is missing).
asyncio's `subprocess_exec` took 2 ms under load to hand back the pid (it connects the
pipes first, and other tasks run meanwhile), which was a fifth of the submit -> RUNNING
latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hodei.worker.guard import JobGuard
from hodei.worker.lines import DEFAULT_MAX_LINE_BYTES, LineSplitter
from hodei.worker.spawn import Child, spawn

logger = logging.getLogger(__name__)

#: Bytes asked of a pipe per read; large reads keep the per-line cost low.
READ_CHUNK = 256 * 1024
#: After the main process exits, how long its pipes may stay open (held by a
#: leftover background process) before the group is killed.
DRAIN_GRACE = 1.0

#: (is_stderr, lines, monotonic read time in ns since the epoch)
LineSink = Callable[[bool, list[bytes], int], None]


class Outcome(enum.StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class RunResult:
    outcome: Outcome
    exit_code: int | None
    error: str = ""


class JobProcess:
    """One attempt's process: start it, pump its output, stop it on timeout or cancel."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        working_dir: str = "",
        timeout: float | None = None,
        on_lines: LineSink,
        kill_grace: float = 5.0,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        is_full: Callable[[], bool] | None = None,
        room: Callable[[], Awaitable[None]] | None = None,
        guard: JobGuard | None = None,
    ) -> None:
        """When `is_full()` says so after a chunk of output, `room()` is awaited: it
        returns once the consumer can take more. Meanwhile the pipe is not read and the
        child blocks on its writes, which bounds the worker's memory. It is not awaited
        once the main process has exited (what is left in the pipes is small)."""
        self._command = list(command)
        self._env = dict(env)
        self._working_dir = working_dir
        self._timeout = timeout if timeout and timeout > 0 else None
        self._on_lines = on_lines
        self._kill_grace = kill_grace
        self._max_line_bytes = max_line_bytes
        self._is_full = is_full
        self._room = room
        #: Told of the process group while the job runs (hodei.worker.guard).
        self._guard = guard
        self._exited: asyncio.Future[int] | None = None
        self._pid: int | None = None
        self._stop = asyncio.Event()
        self._stopped: asyncio.Future[None] | None = None  # resolved by cancel() in wait()
        self._pipes: tuple[_PipeReader, ...] = ()
        self._stop_outcome = Outcome.CANCELLED
        self._stop_force = False
        self._stop_error = ""

    @property
    def pid(self) -> int | None:
        return self._pid

    def cancel(self, *, force: bool = False, reason: str = "") -> None:
        """Stop the attempt: SIGTERM to the group, SIGKILL after the grace (at once if force)."""
        self._stop_force = self._stop_force or force
        if not self._stop.is_set():
            self._stop_error = reason
            self._stop.set()
            if self._stopped is not None and not self._stopped.done():
                self._stopped.set_result(None)
        elif force and self._pid is not None:
            self._signal_group(signal.SIGKILL)

    async def run(self, on_started: Callable[[int], None]) -> RunResult:
        """start() then wait()."""
        return self.start(on_started) or await self.wait()

    def start(self, on_started: Callable[[int], None]) -> RunResult | None:
        """Start the process now (fork/exec, ~0.3 ms) and call `on_started(pid)`; the
        result instead if it could not start. Synchronous so that the caller can start
        the job the moment it is received, without waiting for a task to be scheduled."""
        if not self._command or not self._command[0]:
            return RunResult(Outcome.FAILED, None, "empty command")
        if self._stop.is_set():
            return RunResult(Outcome.CANCELLED, None, self._stop_error or "cancelled before start")
        env, spawn_number = self._env, None
        if self._guard is not None:
            # Registered before the spawn: a worker killed inside it leaves no job behind.
            spawn_number, marker = self._guard.begin_spawn()
            env = {**env, **marker}
        try:
            child = spawn(self._command, env, self._working_dir)
        except OSError as exc:
            what = exc.strerror or type(exc).__name__
            where = f" in {self._working_dir!r}" if self._working_dir else ""
            error = f"cannot start {self._command[0]!r}{where}: {what}"
            return RunResult(Outcome.FAILED, None, error)
        self._pid = child.pid
        loop = asyncio.get_running_loop()
        if self._guard is not None:
            self._guard.track(child.pid, spawn_number)
        self._exited = _watch_exit(child, loop)
        # Read from now on, in event-loop callbacks: no transport, no task per pipe.
        self._pipes = (
            _PipeReader(loop, child.stdout, False, self),
            _PipeReader(loop, child.stderr, True, self),
        )
        on_started(child.pid)
        return None

    async def wait(self) -> RunResult:
        """After a successful start(): enforce the timeout and the cancel, wait for the
        exit and the end of the output, and return the outcome. Everything up to here
        happens in callbacks; this coroutine resumes once or twice for a short job."""
        exited, pipes = self._exited, self._pipes
        assert exited is not None and pipes, "wait() before a successful start()"
        loop = asyncio.get_running_loop()
        self._stopped = loop.create_future()
        if self._stop.is_set():
            self._stopped.set_result(None)
        outcome: Outcome | None = None
        error = ""
        try:
            if not exited.done():
                waiters: set[asyncio.Future[Any]] = {exited, self._stopped}
                await asyncio.wait(
                    waiters, timeout=self._timeout, return_when=asyncio.FIRST_COMPLETED
                )
            if not exited.done():
                if self._stop.is_set():
                    outcome, error = self._stop_outcome, self._stop_error or "cancelled"
                else:
                    outcome = Outcome.TIMED_OUT
                    error = f"timed out after {self._timeout:g} s"
                    # Its job_id and correlation_id come from the attempt task's job context.
                    logger.info("job timed out, killing its process group")
                await self._terminate(exited)
            returncode = await exited
            if not all(pipe.done.done() for pipe in pipes):
                await self._drain(pipes)
        finally:
            # The job is its process group: what is left of it goes with it, whether
            # its main process exited or we are being cancelled ourselves. A background
            # process that closed its output would otherwise outlive the job.
            self._signal_group(signal.SIGKILL)
            for pipe in pipes:
                pipe.close()
            if self._guard is not None and self._pid is not None:
                self._guard.release(self._pid)
        exit_code, signal_note = _exit_code(returncode)
        if outcome is None:
            outcome = Outcome.SUCCEEDED if returncode == 0 else Outcome.FAILED
            error = signal_note
        return RunResult(outcome, exit_code, error)

    async def _wait_room(self) -> None:
        exited = self._exited
        if self._room is None or exited is None or exited.done():
            return
        room: asyncio.Future[None] = asyncio.ensure_future(self._room())
        waiters: set[asyncio.Future[Any]] = {room, exited}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            room.cancel()

    async def _terminate(self, exited: asyncio.Future[int]) -> None:
        if not self._stop_force:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), self._kill_grace)
        # SIGKILL the group even when the leader went on SIGTERM: a grandchild
        # that ignores SIGTERM must not outlive its job.
        self._signal_group(signal.SIGKILL)

    async def _drain(self, pipes: tuple[_PipeReader, ...]) -> None:
        """Read the pipes to the end; a leftover background process holding them
        open is killed with the group after DRAIN_GRACE."""
        ends = {pipe.done for pipe in pipes}
        _, pending = await asyncio.wait(ends, timeout=DRAIN_GRACE)
        if pending:
            logger.info("job left processes holding its output open; killing its group")
            self._signal_group(signal.SIGKILL)
            await asyncio.wait(pending, timeout=DRAIN_GRACE)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pid, sig)


class _PipeReader:
    """One of the child's pipes, read in event-loop callbacks until EOF.

    With a transport, a StreamReader and a task per pipe, a job that prints nothing
    and exits at once still needed about six event-loop turns after its exit before
    its result could be sent; under load (16 jobs, the stream, the spawns) that was
    ~9 ms per job, and slots stayed held meanwhile. Here a read happens in the
    callback that says the pipe is readable, and `done` resolves at EOF.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        is_stderr: bool,
        owner: JobProcess,
    ) -> None:
        self._loop = loop
        self._fd = fd
        self._is_stderr = is_stderr
        self._owner = owner
        self._splitter = LineSplitter(owner._max_line_bytes)
        self.done: asyncio.Future[None] = loop.create_future()
        self._reading = False
        self._resume: asyncio.Task[None] | None = None
        os.set_blocking(self._fd, False)
        self._listen()

    def _listen(self) -> None:
        if not self._reading and not self.done.done():
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""  # read error: treat as the end of the output
        if not chunk:
            self.close()
            return
        lines = self._splitter.feed(chunk)
        if lines:
            owner = self._owner
            owner._on_lines(self._is_stderr, lines, time.time_ns())
            if owner._is_full is not None and owner._is_full():
                self._pause()

    def _pause(self) -> None:
        """Stop reading until the consumer has room: the child blocks on its writes."""
        exited = self._owner._exited
        if self._owner._room is None or exited is None or exited.done():
            return
        self._loop.remove_reader(self._fd)
        self._reading = False
        self._resume = asyncio.ensure_future(self._resume_when_room())

    async def _resume_when_room(self) -> None:
        await self._owner._wait_room()
        self._listen()

    def close(self) -> None:
        """EOF, or given up on: flush a last unterminated line and stop reading."""
        if self.done.done():
            return
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False
        if self._resume is not None:
            self._resume.cancel()
        os.close(self._fd)
        rest = self._splitter.finish()
        if rest:
            self._owner._on_lines(self._is_stderr, rest, time.time_ns())
        self.done.set_result(None)


def _watch_exit(child: Child, loop: asyncio.AbstractEventLoop) -> asyncio.Future[int]:
    """A future resolved with the child's returncode (negative: killed by that signal)
    as soon as it exits, whatever holds its pipes open (a background grandchild can
    keep them open for as long as it lives)."""
    exited: asyncio.Future[int] = loop.create_future()
    try:
        pidfd = os.pidfd_open(child.pid)
    except (AttributeError, OSError):
        # No pidfd (not Linux >= 5.3): one thread blocks in waitpid for this child.
        def waited(done: asyncio.Future[int]) -> None:
            if not exited.done():
                exited.set_result(done.result())

        loop.run_in_executor(None, child.wait).add_done_callback(waited)
        return exited

    def reap() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        # The pidfd is readable once the child exited: wait() reaps it at once.
        code = child.wait()
        if not exited.done():
            exited.set_result(code)

    loop.add_reader(pidfd, reap)
    return exited


def _exit_code(returncode: int) -> tuple[int, str]:
    """Shell convention for a signal death (128 + signal number), with a note."""
    if returncode >= 0:
        return returncode, ""
    signum = -returncode
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return 128 + signum, f"killed by {name}"
