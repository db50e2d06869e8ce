"""Fixtures for integration tests that run real worker processes.

- ``stubs_for`` (function): ``stubs_for(address)`` gives gRPC stubs closed at teardown.
- ``spawn_worker`` (function, async factory): ``w = await spawn_worker(address, slots=1,
  name=None, wait_ready=True, **settings)`` starts ``python -m hodei.worker --server address``
  as a real subprocess; extra Settings go in by group (``worker={"kill_grace": 1.0}``) and
  reach the worker as their ``HODEI_*`` variables. Its log (DEBUG,
  text) is written to ``tmp_path/worker-<n>.log`` (``w.log_path``, ``w.log_text()``). With
  ``wait_ready`` it returns once the worker's stream is open ("stream open" in its log).
  At teardown every worker still running gets SIGTERM, then SIGKILL; the process groups of
  the jobs it started (its children) are killed too, so a test that SIGKILLs a worker
  leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from harness.launchers.base import ANY_METRICS_PORT
from harness.processes import children
from harness.waits import WaitTimeout, wait_for_async, wait_until_async
from hodei.api.v1 import workers_pb2, workers_pb2_grpc
from hodei.client.channel import token_interceptors
from hodei.settings import environment_for
from hodei.worker.command import worker_command
from tests.integration.tokens import server_token

if TYPE_CHECKING:
    from harness.nats_server import NatsServer

_REPO = Path(__file__).resolve().parents[2]


class WorkerExited(AssertionError):
    """The worker process ended while a test waited for it to log something."""


class WorkerProcess:
    def __init__(
        self, proc: subprocess.Popen[bytes], log_path: Path, name: str, address: str
    ) -> None:
        self.proc = proc
        self.log_path = log_path
        self.name = name
        #: The server it was started against (where its registration is listed).
        self.address = address
        #: Job process groups seen under this worker (collected before it dies).
        self.job_pids: set[int] = set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def error_lines(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if " ERROR " in line]

    async def worker_id(self) -> str:
        """The id the server gave this worker, from the API (ListWorkers) by the worker's
        pid, not from its log text. The latest registration wins: a worker registers
        again when the server it reaches does not know it."""
        async with grpc.aio.insecure_channel(
            self.address, interceptors=token_interceptors(server_token(self.address))
        ) as channel:
            reply = await workers_pb2_grpc.WorkerAgentServiceStub(channel).ListWorkers(
                workers_pb2.ListWorkersRequest(include_gone=True), timeout=5
            )
        mine = [w for w in reply.workers if w.pid == self.pid]
        assert mine, f"worker {self.name} is not registered; log:\n{self.log_text()}"
        latest = max(mine, key=lambda w: (w.registered_at.seconds, w.registered_at.nanos))
        return str(latest.id)

    def note_children(self) -> list[int]:
        kids = children(self.pid) if self.proc.poll() is None else []
        self.job_pids.update(kids)
        return kids

    async def wait_log(self, pattern: str, seconds: float = 15.0, count: int = 1) -> None:
        """Wait until the log holds `count` matches of the regex `pattern`."""
        rx = re.compile(pattern)

        async def matches() -> int:
            found = len(rx.findall(self.log_text()))
            if found < count and self.proc.poll() is not None:
                raise WorkerExited(
                    f"worker {self.name} exited ({self.proc.returncode}) while waiting for "
                    f"{pattern!r}; log:\n{self.log_text()}"
                )
            self.note_children()
            return found

        try:
            await wait_for_async(
                f"worker {self.name}: {pattern!r} x{count}",
                matches,
                lambda n: n >= count,
                seconds,
                abort_on=(WorkerExited,),
            )
        except WaitTimeout as exc:
            raise AssertionError(f"{exc}; log:\n{self.log_text()}") from None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.note_children()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)

    async def wait_exit(self, seconds: float = 15.0) -> int:
        await wait_until_async(
            f"worker {self.name} to exit", lambda: self.proc.poll() is not None, seconds
        )
        return self.proc.returncode

    async def stop(self, seconds: float = 15.0) -> int:
        """SIGTERM (graceful shutdown), wait; SIGKILL if it does not exit in time."""
        self.kill(signal.SIGTERM)
        try:
            return await self.wait_exit(seconds)
        except AssertionError:
            self.kill(signal.SIGKILL)
            return await self.wait_exit(5)

    def reap_jobs(self) -> None:
        for pid in self.job_pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def _popen(argv: list[str], env: dict[str, str], stderr_path: Path) -> subprocess.Popen[bytes]:
    with stderr_path.open("wb") as stderr:
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


SpawnWorker = Callable[..., Awaitable[WorkerProcess]]


@pytest.fixture
async def spawn_worker(tmp_path: Path) -> AsyncIterator[SpawnWorker]:
    started: list[WorkerProcess] = []

    async def spawn(
        address: str,
        *,
        slots: int = 1,
        name: str | None = None,
        wait_ready: bool = True,
        **settings: dict[str, Any],
    ) -> WorkerProcess:
        index = len(started) + 1
        name = name or f"test-worker-{index}"
        log_path = tmp_path / f"worker-{index}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
        env["PYTHONPATH"] = str(_REPO)
        env.update(ANY_METRICS_PORT)
        worker_token = server_token(address, "worker")
        if worker_token:  # a test's own client={"token": ...} wins
            env["HODEI_TOKEN"] = worker_token
        env.update(environment_for(settings))
        argv = worker_command(address, slots=slots, name=name, log_level="DEBUG", log_file=log_path)
        proc = _popen(argv, env, tmp_path / f"worker-{index}.stderr")
        worker = WorkerProcess(proc, log_path, name, address)
        started.append(worker)
        if wait_ready:
            await worker.wait_log(r"stream open", seconds=20)
        return worker

    yield spawn
    for worker in started:
        if worker.proc.poll() is None:
            await worker.stop(seconds=10)
        worker.reap_jobs()


@pytest.fixture
async def stubs_for() -> AsyncIterator[Callable[[str], Any]]:
    """``stubs = stubs_for(address)``: gRPC stubs (tests.integration.wire.Stubs) on a
    server, closed at teardown."""
    from tests.integration.wire import Stubs

    made: list[Stubs] = []

    def make(address: str) -> Stubs:
        made.append(Stubs(address))
        return made[-1]

    yield make
    for stubs in made:
        await stubs.close()


@pytest.fixture
async def shared_nats() -> AsyncIterator[dict[str, Any]]:
    """`broker` settings on the machine's shared NATS with a stream and subject prefix
    of this test's own (deleted at teardown); skips when there is none. Name it before
    `start_server` in a test's arguments: set up first, it is torn down after the
    servers stopped (a relay still running would create the stream again)."""
    from tests.integration.nats_events import delete_stream, require_shared, unique_broker

    broker = unique_broker(require_shared())
    yield broker
    await delete_stream(broker["nats_url"], broker["stream"])


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server -js of this test's own, on a free port with its store in tmp_path:
    the test may kill it (`kill()`) and start it again (`start()`)."""
    from harness.nats_server import NatsServer
    from tests.integration.nats_events import require_binary

    server = NatsServer(tmp_path / "nats", binary=require_binary()).start()
    yield server
    server.stop()
