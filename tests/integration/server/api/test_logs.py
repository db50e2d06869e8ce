"""SubscribeLogs / GetLogs over real gRPC, fed by a hand-driven worker stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from hodei.api.v1 import common_pb2, logs_pb2, workers_pb2
from tests.integration.wire import FakeWorkerStream, Stubs

StartServer = Callable[..., Awaitable[Any]]


pytestmark = pytest.mark.integration


class Running:
    """A job RUNNING on a hand-driven worker, with helpers to emit lines and finish."""

    def __init__(self, stubs: Stubs, worker: FakeWorkerStream, ref: common_pb2.JobRef) -> None:
        self.stubs = stubs
        self.worker = worker
        self.ref = ref
        self.sent = 0

    @property
    def job_id(self) -> str:
        return self.ref.job_id

    async def emit(self, count: int, stderr_every: int = 0) -> None:
        now = Timestamp()
        now.GetCurrentTime()
        entries = [
            workers_pb2.LogEntry(
                is_stderr=bool(stderr_every) and (self.sent + i) % stderr_every == 0,
                line=f"line {self.sent + i + 1}",
                timestamp=now,
            )
            for i in range(count)
        ]
        await self.worker.send(
            logs=workers_pb2.LogBatch(ref=self.ref, first_line=self.sent, entries=entries)
        )
        self.sent += count
        persisted = await self.worker.receive_kind("persisted")
        assert persisted.next_line == self.sent

    async def finish(self) -> None:
        await self.worker.send(
            result=workers_pb2.JobResult(
                ref=self.ref,
                outcome=workers_pb2.JOB_OUTCOME_SUCCEEDED,
                has_exit_code=True,
                exit_code=0,
                total_lines=self.sent,
            )
        )
        assert (await self.worker.receive_kind("persisted")).result_persisted


@pytest.fixture
async def running(start_server: StartServer) -> AsyncIterator[Running]:
    app = await start_server(
        dispatcher={"poll_interval": 0.2, "ack_timeout": 60}, recovery={"heartbeat_interval": 60}
    )
    stubs = Stubs(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    await stubs.queue(["/bin/sh", "-c", "seq 1000"])
    run = await worker.receive_kind("run")
    await worker.send(started=workers_pb2.JobStarted(ref=run.ref))
    await stubs.wait_state(run.ref.job_id, common_pb2.JOB_STATE_RUNNING)
    yield Running(stubs, worker, run.ref)
    await worker.close()
    await stubs.close()


async def collect(call: Any) -> list[Any]:
    return [line async for line in call]


async def test_history_over_100_lines_then_live_then_end(running: Running) -> None:
    await running.emit(250, stderr_every=7)  # more than the original's 100-line limit
    call = running.stubs.logs.SubscribeLogs(
        logs_pb2.SubscribeLogsRequest(job_id=running.job_id, include_history=True)
    )
    reader = asyncio.create_task(collect(call))
    await asyncio.sleep(0.3)
    for _ in range(5):
        await running.emit(40)
    await running.finish()
    lines = await asyncio.wait_for(reader, 10)  # the stream ends by itself
    assert [line.sequence for line in lines] == list(range(1, 451))  # no gap, no duplicate
    assert [line.line for line in lines[:2]] == ["line 1", "line 2"]
    assert lines[0].is_stderr and lines[7].is_stderr and not lines[6].is_stderr
    assert all(line.attempt == 1 and line.job_id == running.job_id for line in lines)


async def test_live_only_tail_and_resume(running: Running) -> None:
    await running.emit(30)
    live = asyncio.create_task(
        collect(
            running.stubs.logs.SubscribeLogs(
                logs_pb2.SubscribeLogsRequest(job_id=running.job_id, include_history=False)
            )
        )
    )
    await asyncio.sleep(0.3)
    await running.emit(5)
    await running.finish()
    assert [line.sequence for line in await asyncio.wait_for(live, 10)] == [31, 32, 33, 34, 35]

    tail = await collect(
        running.stubs.logs.SubscribeLogs(
            logs_pb2.SubscribeLogsRequest(job_id=running.job_id, include_history=True, tail_lines=3)
        )
    )
    assert [line.sequence for line in tail] == [33, 34, 35]
    resumed = await collect(
        running.stubs.logs.SubscribeLogs(
            logs_pb2.SubscribeLogsRequest(
                job_id=running.job_id, include_history=True, after_sequence=32
            )
        )
    )
    assert [line.sequence for line in resumed] == [33, 34, 35]


async def test_many_subscribers_and_a_stalled_one_do_not_block_ingestion(
    running: Running,
) -> None:
    fast = [
        asyncio.create_task(
            collect(
                running.stubs.logs.SubscribeLogs(
                    logs_pb2.SubscribeLogsRequest(job_id=running.job_id, include_history=True)
                )
            )
        )
        for _ in range(3)
    ]
    # A subscriber that never reads: its stream is open but nothing is consumed.
    stalled = running.stubs.logs.SubscribeLogs(
        logs_pb2.SubscribeLogsRequest(job_id=running.job_id, include_history=True)
    )
    await asyncio.sleep(0.2)
    # More than a subscriber's in-memory buffer: the stalled one overflows to the table.
    for _ in range(6):
        await asyncio.wait_for(running.emit(2000), 10)
    await running.finish()
    for task in fast:
        lines = await asyncio.wait_for(task, 30)
        assert [line.sequence for line in lines] == list(range(1, 12_001))
    stalled.cancel()


async def test_get_logs_pages_and_completion(running: Running) -> None:
    await running.emit(25)
    page = await running.stubs.logs.GetLogs(
        logs_pb2.GetLogsRequest(job_id=running.job_id, after_sequence=10, limit=10)
    )
    assert [line.sequence for line in page.lines] == list(range(11, 21)) and not page.complete
    await running.finish()
    rest = await running.stubs.logs.GetLogs(
        logs_pb2.GetLogsRequest(job_id=running.job_id, after_sequence=20)
    )
    assert [line.sequence for line in rest.lines] == [21, 22, 23, 24, 25] and rest.complete


async def test_result_waits_for_all_lines(running: Running) -> None:
    # The result announces 5 lines that have not arrived yet: it is held, not applied.
    await running.worker.send(
        result=workers_pb2.JobResult(
            ref=running.ref,
            outcome=workers_pb2.JOB_OUTCOME_FAILED,
            has_exit_code=True,
            exit_code=3,
            total_lines=5,
        )
    )
    await asyncio.sleep(0.3)
    await running.stubs.wait_state(running.job_id, common_pb2.JOB_STATE_RUNNING)
    now = Timestamp()
    now.GetCurrentTime()
    await running.worker.send(
        logs=workers_pb2.LogBatch(
            ref=running.ref,
            first_line=0,
            entries=[workers_pb2.LogEntry(line=f"l{i}", timestamp=now) for i in range(5)],
        )
    )
    persisted = await running.worker.receive_kind("persisted")
    assert persisted.next_line == 5 and persisted.result_persisted
    job = await running.stubs.wait_state(running.job_id, common_pb2.JOB_STATE_FAILED)
    assert job.exit_code == 3


@pytest.mark.parametrize(
    ("job_id", "code"),
    [
        ("nope", grpc.StatusCode.INVALID_ARGUMENT),
        ("5f0f3c4e-0000-4000-8000-000000000000", grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_subscribe_bad_job_id(running: Running, job_id: str, code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await collect(
            running.stubs.logs.SubscribeLogs(logs_pb2.SubscribeLogsRequest(job_id=job_id))
        )
    assert info.value.code() == code


async def test_batched_subscription_has_the_same_lines(running: Running) -> None:
    await running.emit(1500)
    call = running.stubs.logs.SubscribeLogBatches(
        logs_pb2.SubscribeLogsRequest(job_id=running.job_id, include_history=True)
    )
    reader = asyncio.create_task(collect(call))
    await asyncio.sleep(0.2)
    await running.emit(700)
    await running.finish()
    batches = await asyncio.wait_for(reader, 10)
    assert len(batches) < 2200 / 10  # many lines per message
    sequences = [line.sequence for batch in batches for line in batch.lines]
    assert sequences == list(range(1, 2201))


async def test_columnar_subscription_has_the_same_lines_in_columns(running: Running) -> None:
    await running.emit(1200)
    call = running.stubs.logs.SubscribeLogBatches(
        logs_pb2.SubscribeLogsRequest(job_id=running.job_id, include_history=True, columnar=True)
    )
    reader = asyncio.create_task(collect(call))
    await asyncio.sleep(0.2)
    await running.emit(300)
    await running.finish()
    batches = await asyncio.wait_for(reader, 10)
    assert all(not b.lines and b.HasField("columns") for b in batches)
    columns = [b.columns for b in batches]
    assert {c.job_id for c in columns} == {running.job_id}
    assert [s for c in columns for s in c.sequences] == list(range(1, 1501))
    for c in columns:
        assert len(c.texts) == len(c.is_stderr) == len(c.unix_micros) == len(c.attempts)
        assert all(us > 1_600_000_000_000_000 for us in c.unix_micros)
        assert set(c.attempts) == {1}
    # The same text as the per-line form reads from the table.
    page = await running.stubs.logs.GetLogs(
        logs_pb2.GetLogsRequest(job_id=running.job_id, limit=1500)
    )
    assert [t for c in columns for t in c.texts] == [line.line for line in page.lines]
