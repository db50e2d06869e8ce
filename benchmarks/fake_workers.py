"""A fleet of light fake workers in one process, speaking the real WorkerStream
protocol (docs/worker-protocol.md) without spawning anything: what a server pays per
connected worker, measured without paying for 200 Python worker processes.

    python benchmarks/fake_workers.py --server 127.0.0.1:50051 --count 200 [--slots 1]

Each fake worker has its own channel (a TCP connection with the worker's keepalive, as
a real worker has), calls Register, opens WorkerStream with Hello (batches on), sends a
Heartbeat every `heartbeat_interval_ms` the server gave it, and answers each RunJob
with JobStarted, then `--run-ms` later a successful JobResult with no output. Messages
ready together go as one WorkerBatch, as the Hodei worker sends them.

The worker token comes from HODEI_TOKEN. Control is on stdin/stdout, one JSON object a
line: the fleet prints {"event": "connected", ...} once every worker is welcomed; a
"stats" line on stdin prints the counters; "stop" (or end of input) sends Goodbye on
every stream, prints the final counters and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from hodei.api.v1 import common_pb2, workers_pb2, workers_pb2_grpc
from hodei.client.channel import channel_options, token_metadata

logger = logging.getLogger(__name__)

#: Registrations in flight at once: 200 workers starting together is a thundering
#: herd no real fleet produces, and it would measure the start, not the steady state.
_CONNECTING = 16


@dataclass
class Stats:
    connected: int = 0
    heartbeats: int = 0
    runs: int = 0
    results: int = 0
    persisted: int = 0
    rejected: int = 0
    writes: int = 0
    errors: int = 0


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns())
    return stamp


class FakeWorker:
    def __init__(self, address: str, token: str, slots: int, name: str, run_s: float, stats: Stats):
        self.address = address
        self.metadata = token_metadata(token)
        self.slots = slots
        self.name = name
        self.run_s = run_s
        self.stats = stats
        self.channel = grpc.aio.insecure_channel(address, options=channel_options())
        self.stub = workers_pb2_grpc.WorkerAgentServiceStub(self.channel)
        self.call: Any = None
        #: Attempts sent to us whose result the server has not confirmed yet.
        self.held: dict[tuple[str, int], common_pb2.JobRef] = {}
        self.outgoing: list[workers_pb2.WorkerMessage] = []
        self.ready = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def connect(self) -> None:
        reg = await self.stub.Register(
            workers_pb2.RegisterRequest(
                name=self.name, hostname="fake", pid=os.getpid(), slots=self.slots
            ),
            metadata=self.metadata,
            timeout=30,
        )
        self.call = self.stub.WorkerStream(metadata=self.metadata)
        await self.call.write(
            workers_pb2.WorkerMessage(
                hello=workers_pb2.Hello(
                    worker_id=reg.worker_id,
                    slots=self.slots,
                    batches=True,
                    session_secret=reg.session_secret,
                    sent_at=_now(),
                )
            )
        )
        first = await self.call.read()
        if first is grpc.aio.EOF or first.WhichOneof("payload") != "welcome":
            raise RuntimeError(f"{self.name}: no Welcome ({first})")
        self.stats.connected += 1
        interval = reg.heartbeat_interval_ms / 1000
        self.tasks = [
            asyncio.create_task(self._read(), name=f"{self.name}-read"),
            asyncio.create_task(self._write(), name=f"{self.name}-write"),
            asyncio.create_task(self._heartbeats(interval), name=f"{self.name}-heartbeat"),
        ]
        for task in self.tasks:
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        # A stream that fails mid-run must show in the counters, not vanish.
        if not task.cancelled() and task.exception() is not None:
            self.stats.errors += 1
            logger.warning("%s: %s failed: %r", self.name, task.get_name(), task.exception())

    def send(self, message: workers_pb2.WorkerMessage) -> None:
        self.outgoing.append(message)
        self.ready.set()

    async def _write(self) -> None:
        # One write in flight at a time (grpc.aio's rule); whatever queued meanwhile
        # goes as one WorkerBatch.
        while True:
            await self.ready.wait()
            self.ready.clear()
            group, self.outgoing = self.outgoing, []
            if not group:
                continue
            message = (
                group[0]
                if len(group) == 1
                else workers_pb2.WorkerMessage(batch=workers_pb2.WorkerBatch(messages=group))
            )
            await self.call.write(message)
            self.stats.writes += 1

    async def _heartbeats(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            free = max(self.slots - len(self.held), 0)
            self.send(
                workers_pb2.WorkerMessage(
                    heartbeat=workers_pb2.Heartbeat(
                        running=list(self.held.values()), free_slots=free, sent_at=_now()
                    )
                )
            )
            self.stats.heartbeats += 1

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            message = await self.call.read()
            if message is grpc.aio.EOF:
                return
            kind = message.WhichOneof("payload")
            messages = message.batch.messages if kind == "batch" else [message]
            for one in messages:
                self._handle(one, loop)

    def _handle(self, message: workers_pb2.ServerMessage, loop: asyncio.AbstractEventLoop) -> None:
        kind = message.WhichOneof("payload")
        if kind == "run":
            ref = message.run.ref
            self.held[(ref.job_id, ref.attempt)] = ref
            self.stats.runs += 1
            self.send(workers_pb2.WorkerMessage(started=workers_pb2.JobStarted(ref=ref, pid=1)))
            loop.call_later(self.run_s, self._finish, ref)
        elif kind == "persisted":
            if message.persisted.result_persisted:
                self.held.pop((message.persisted.ref.job_id, message.persisted.ref.attempt), None)
                self.stats.persisted += 1
        elif kind == "rejected":
            self.stats.rejected += 1
            logger.warning("%s: rejected: %s", self.name, message.rejected.message)

    def _finish(self, ref: common_pb2.JobRef) -> None:
        self.send(
            workers_pb2.WorkerMessage(
                result=workers_pb2.JobResult(
                    ref=ref,
                    outcome=workers_pb2.JOB_OUTCOME_SUCCEEDED,
                    has_exit_code=True,
                    exit_code=0,
                    total_lines=0,
                    has_output_read=True,
                )
            )
        )
        self.stats.results += 1

    async def close(self) -> None:
        """Goodbye (a clean stop: TERMINATED, not LOST later), half-close, and wait a
        moment for the server to end the call."""
        for task in self.tasks[1:]:
            task.cancel()
        with contextlib.suppress(Exception):
            if self.call is not None:
                await self.call.write(
                    workers_pb2.WorkerMessage(goodbye=workers_pb2.Goodbye(reason="bench done"))
                )
                await self.call.done_writing()
                await asyncio.wait_for(asyncio.shield(self.tasks[0]), 2.0)
        for task in self.tasks:
            task.cancel()
        await self.channel.close()


def _emit(event: str, stats: Stats, **extra: Any) -> None:
    print(json.dumps({"event": event, **asdict(stats), **extra}), flush=True)


async def _commands() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def main_async(args: argparse.Namespace) -> None:
    stats = Stats()
    token = os.environ.get("HODEI_TOKEN", "")
    fleet = [
        FakeWorker(
            args.server, token, args.slots, f"{args.prefix}-{i + 1}", args.run_ms / 1000, stats
        )
        for i in range(args.count)
    ]
    gate = asyncio.Semaphore(_CONNECTING)

    async def connect(worker: FakeWorker) -> None:
        async with gate:
            await worker.connect()

    began = time.perf_counter()
    await asyncio.gather(*(connect(w) for w in fleet))
    _emit("connected", stats, seconds=time.perf_counter() - began)
    commands = await _commands()
    try:
        while True:
            line = (await commands.readline()).decode().strip()
            if line == "stats":
                _emit("stats", stats)
            elif line in ("stop", ""):
                break
    finally:
        await asyncio.gather(*(w.close() for w in fleet), return_exceptions=True)
        _emit("stopped", stats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="HOST:PORT")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--slots", type=int, default=1)
    parser.add_argument("--prefix", default="fake")
    parser.add_argument(
        "--run-ms",
        type=float,
        default=2.0,
        help="from JobStarted to JobResult (a `true` process lives ~1-2 ms)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
