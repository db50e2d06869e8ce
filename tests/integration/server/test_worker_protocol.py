"""The worker protocol spoken over a real grpc.aio stream against a real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from harness.waits import wait_until_async
from hodei.api.v1 import common_pb2, jobs_pb2, workers_pb2
from tests.integration.wire import FakeWorkerStream, Stubs

StartServer = Callable[..., Awaitable[Any]]


pytestmark = pytest.mark.integration


@pytest.fixture
async def stubs_factory() -> AsyncIterator[Callable[[str], Stubs]]:
    made: list[Stubs] = []

    def make(address: str) -> Stubs:
        stubs = Stubs(address)
        made.append(stubs)
        return stubs

    yield make
    for stubs in made:
        await stubs.close()


def entries(*lines: str, stderr: bool = False) -> list[workers_pb2.LogEntry]:
    now = Timestamp()
    now.GetCurrentTime()
    return [workers_pb2.LogEntry(is_stderr=stderr, line=line, timestamp=now) for line in lines]


async def test_job_runs_to_succeeded_over_the_stream(
    start_server: StartServer, stubs_factory: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(dispatcher={"poll_interval": 0.2})
    stubs = stubs_factory(app.address)
    worker, welcome = await FakeWorkerStream.connect(stubs)
    assert welcome.worker_id == worker.worker_id and not welcome.superseded

    job = await stubs.queue(["/bin/echo", "hi"])
    run = await worker.receive_kind("run")
    assert run.ref.job_id == job.id and run.ref.attempt == 1
    assert list(run.command) == ["/bin/echo", "hi"]
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_ASSIGNED)

    await worker.send(ack=workers_pb2.JobAck(ref=run.ref, accepted=True))
    await worker.send(started=workers_pb2.JobStarted(ref=run.ref, pid=42))
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_RUNNING)
    await worker.send(
        logs=workers_pb2.LogBatch(ref=run.ref, first_line=0, entries=entries("hi", "there"))
    )
    persisted = await worker.receive_kind("persisted")
    assert persisted.next_line == 2 and not persisted.result_persisted
    await worker.send(
        result=workers_pb2.JobResult(
            ref=run.ref,
            outcome=workers_pb2.JOB_OUTCOME_SUCCEEDED,
            has_exit_code=True,
            exit_code=0,
            total_lines=2,
        )
    )
    persisted = await worker.receive_kind("persisted")
    assert persisted.result_persisted
    done = await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED)
    assert done.has_exit_code and done.exit_code == 0 and done.attempts == 1

    with psycopg.connect(db_url) as conn:
        events = [
            r[0]
            for r in conn.execute(
                "SELECT event_type FROM domain_events WHERE aggregate_id = %s ORDER BY id",
                (job.id,),
            )
        ]
        lines = conn.execute(
            "SELECT sequence, line FROM job_logs WHERE job_id = %s ORDER BY sequence", (job.id,)
        ).fetchall()
        outbox = conn.execute(
            "SELECT count(*) FROM outbox_events o JOIN domain_events d ON d.id = o.event_id "
            "WHERE d.aggregate_id = %s",
            (job.id,),
        ).fetchone()
        queue = conn.execute("SELECT count(*) FROM job_queue").fetchone()
    assert events == ["JobCreated", "JobAssigned", "JobStarted", "JobSucceeded"]
    assert lines == [(1, "hi"), (2, "there")]
    assert outbox == (4,)
    assert queue == (0,)
    await worker.close()


async def test_first_message_must_be_hello(
    start_server: StartServer, stubs_factory: Callable[[str], Stubs]
) -> None:
    app = await start_server()
    stubs = stubs_factory(app.address)
    stream = FakeWorkerStream(stubs, "x")
    await stream.send(heartbeat=workers_pb2.Heartbeat())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stream.receive()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Hello" in (info.value.details() or "")


async def test_unknown_worker_is_not_found(
    start_server: StartServer, stubs_factory: Callable[[str], Stubs]
) -> None:
    app = await start_server()
    stubs = stubs_factory(app.address)
    stream = FakeWorkerStream(stubs, "5f0f3c4e-0000-4000-8000-000000000000")
    await stream.send(hello=workers_pb2.Hello(worker_id=stream.worker_id, slots=1))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stream.receive()
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_malformed_worker_id_is_invalid_argument(
    start_server: StartServer, stubs_factory: Callable[[str], Stubs]
) -> None:
    app = await start_server()
    stubs = stubs_factory(app.address)
    stream = FakeWorkerStream(stubs, "not-a-uuid")
    await stream.send(hello=workers_pb2.Hello(worker_id="not-a-uuid", slots=1))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stream.receive()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_worker_is_ready_only_after_hello(
    start_server: StartServer, stubs_factory: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server()
    stubs = stubs_factory(app.address)
    reg = await stubs.workers.Register(workers_pb2.RegisterRequest(name="w", slots=2))
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT state, server_id FROM workers WHERE id = %s", (reg.worker_id,))
        assert row.fetchone() == ("CREATING", None)
    worker, _ = await FakeWorkerStream.connect(
        stubs, slots=2, worker_id=reg.worker_id, secret=reg.session_secret
    )
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT state, server_id FROM workers WHERE id = %s", (reg.worker_id,))
        assert row.fetchone() == ("READY", app.server_id)
    listed = await stubs.workers.ListWorkers(workers_pb2.ListWorkersRequest())
    assert [w.id for w in listed.workers] == [reg.worker_id] and listed.workers[0].connected
    await worker.close()


async def test_message_for_unknown_job_is_rejected_and_stream_stays_open(
    start_server: StartServer, stubs_factory: Callable[[str], Stubs]
) -> None:
    app = await start_server()
    stubs = stubs_factory(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    ref = common_pb2.JobRef(job_id="5f0f3c4e-0000-4000-8000-000000000000", attempt=1)
    await worker.send(started=workers_pb2.JobStarted(ref=ref))
    rejected = await worker.receive_kind("rejected")
    assert rejected.code == "NOT_FOUND"
    await worker.send(started=workers_pb2.JobStarted(ref=common_pb2.JobRef(job_id="bad")))
    rejected = await worker.receive_kind("rejected")
    assert rejected.code == "INVALID_ARGUMENT"
    # Still open: a job queued now is delivered.
    job = await stubs.queue(["true"])
    run = await worker.receive_kind("run")
    assert run.ref.job_id == job.id
    await worker.close()


async def test_batched_messages_both_ways(
    start_server: StartServer, stubs_factory: Callable[[str], Stubs], db_url: str
) -> None:
    """A worker whose Hello says `batches` may get commands grouped in a ServerBatch and
    may send a WorkerBatch: its messages are applied in order (starts and results
    together), a nested batch is refused, and the stream stays open."""
    app = await start_server(dispatcher={"poll_interval": 0.2})
    stubs = stubs_factory(app.address)
    # Jobs queued before the worker connects: one dispatcher cycle assigns all three,
    # and their RunJobs, queued together, are written as one ServerBatch.
    jobs = [await stubs.queue(["/bin/echo", str(i)]) for i in range(3)]
    worker, welcome = await FakeWorkerStream.connect(stubs, slots=3, batches=True)
    assert welcome.batches
    runs = [await worker.receive_kind("run") for _ in range(3)]
    refs = [run.ref for run in runs]
    assert [r.job_id for r in refs] == [j.id for j in jobs]
    assert worker.batches_received == 1

    def result(ref: common_pb2.JobRef, lines: int) -> workers_pb2.WorkerMessage:
        return workers_pb2.WorkerMessage(
            result=workers_pb2.JobResult(
                ref=ref,
                outcome=workers_pb2.JOB_OUTCOME_SUCCEEDED,
                has_exit_code=True,
                total_lines=lines,
            )
        )

    batch = workers_pb2.WorkerBatch(
        messages=[
            *(workers_pb2.WorkerMessage(started=workers_pb2.JobStarted(ref=r)) for r in refs),
            workers_pb2.WorkerMessage(
                logs=workers_pb2.LogBatch(ref=refs[0], first_line=0, entries=entries("one"))
            ),
            result(refs[0], 1),
            result(refs[1], 0),
            result(refs[2], 0),
        ]
    )
    await worker.send(batch=batch)
    # The line first (next_line 1), then the three results.
    persisted = [await worker.receive_kind("persisted") for _ in range(4)]
    assert (persisted[0].ref, persisted[0].next_line) == (refs[0], 1)
    assert not persisted[0].result_persisted
    assert sorted(p.ref.job_id for p in persisted[1:]) == sorted(r.job_id for r in refs)
    assert all(p.result_persisted for p in persisted[1:])
    for ref in refs:
        await stubs.wait_state(ref.job_id, common_pb2.JOB_STATE_SUCCEEDED)
    with psycopg.connect(db_url) as conn:
        line = conn.execute(
            "SELECT line FROM job_logs WHERE job_id = %s", (refs[0].job_id,)
        ).fetchall()
        workers = conn.execute("SELECT state, running_jobs FROM workers").fetchall()
    assert line == [("one",)]
    assert workers == [("READY", 0)]

    nested = workers_pb2.WorkerBatch(messages=[workers_pb2.WorkerMessage(batch=batch)])
    await worker.send(batch=nested)
    rejected = await worker.receive_kind("rejected")
    assert rejected.code == "INVALID_ARGUMENT" and "batch" in rejected.message
    job = await stubs.queue(["true"])
    run = await worker.receive_kind("run")
    assert run.ref.job_id == job.id
    await worker.close()


async def test_idle_stream_with_short_keepalive_stays_up_without_errors(
    start_server: StartServer, caplog: Any
) -> None:
    import asyncio
    import logging

    caplog.set_level(logging.INFO)
    app = await start_server(
        server={"keepalive_time_ms": 300, "keepalive_timeout_ms": 2000, "min_ping_interval_ms": 200}
    )
    # The client pings every 300 ms even with no call data, as a worker would.
    stubs = Stubs(
        app.address,
        options=[
            ("grpc.keepalive_time_ms", 300),
            ("grpc.keepalive_timeout_ms", 2000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ],
    )
    worker, _ = await FakeWorkerStream.connect(stubs)
    await asyncio.sleep(3.0)  # ten keepalive periods with nothing on the stream
    job = await stubs.queue(["true"])
    run = await worker.receive_kind("run")
    assert run.ref.job_id == job.id
    await worker.close()
    await stubs.channel.close()
    noisy = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not noisy, [r.getMessage() for r in noisy]
    assert not any("worker stream ended" in r.getMessage() for r in caplog.records)


async def test_a_draining_worker_gets_no_job_and_goodbye_terminates_it(
    start_server: StartServer, stubs_factory: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(dispatcher={"poll_interval": 0.1})
    stubs = stubs_factory(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    await worker.send(draining=workers_pb2.Draining())

    def state() -> str:
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT state FROM workers WHERE id = %s", (worker.worker_id,))
            return str(row.fetchone()[0])  # type: ignore[index]

    await wait_until_async("the worker to be DRAINING", lambda: state() == "DRAINING", 5)
    # The only worker is draining: a new job waits, several dispatcher cycles long.
    job = await stubs.queue(["/bin/echo", "hi"])
    await asyncio.sleep(0.5)
    got = await stubs.jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job.id))
    assert got.state == common_pb2.JOB_STATE_PENDING

    await worker.send(goodbye=workers_pb2.Goodbye(reason="stopping for a deploy"))
    await wait_until_async("the worker to be TERMINATED", lambda: state() == "TERMINATED", 5)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT event_type, payload->>'reason' FROM domain_events "
            "WHERE aggregate_id = %s ORDER BY id",
            (worker.worker_id,),
        ).fetchall()
    assert [r[0] for r in rows][-2:] == ["WorkerDraining", "WorkerTerminated"], rows
    assert rows[-1][1] == "stopping for a deploy"


def worker_row(db_url: str, worker_id: str) -> tuple[Any, ...]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT clock_skew_s, clock_measured_at IS NOT NULL, server_id,"
            " stream_closed_at IS NOT NULL FROM workers WHERE id = %s",
            (worker_id,),
        ).fetchone()
    assert row is not None
    return tuple(row)


async def test_heartbeat_clock_is_stored_as_skew_and_stream_end_is_dated(
    start_server: StartServer, stubs_factory: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server()
    stubs = stubs_factory(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)  # a Hello without sent_at
    skew, measured, server_id, closed = worker_row(db_url, worker.worker_id)
    assert (skew, measured, closed) == (None, False, False) and server_id

    ahead = Timestamp()
    ahead.GetCurrentTime()
    ahead.FromNanoseconds(ahead.ToNanoseconds() + 120 * 10**9)
    await worker.send(heartbeat=workers_pb2.Heartbeat(free_slots=1, sent_at=ahead))

    def measured_skew() -> bool:
        return worker_row(db_url, worker.worker_id)[1] is True

    await wait_until_async("the skew to be stored", measured_skew, 5)
    skew, *_ = worker_row(db_url, worker.worker_id)
    assert 115.0 < skew <= 120.0, skew  # minus the message's transit time

    await worker.close()
    await wait_until_async(
        "the stream end to be recorded",
        lambda: worker_row(db_url, worker.worker_id)[2:] == (None, True),
        5,
    )


async def test_result_carries_what_the_worker_read_beside_what_was_stored(
    start_server: StartServer, stubs_factory: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(dispatcher={"poll_interval": 0.2})
    stubs = stubs_factory(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    job = await stubs.queue(["/bin/echo", "hi"])
    run = await worker.receive_kind("run")
    await worker.send(started=workers_pb2.JobStarted(ref=run.ref, pid=42))
    await worker.send(logs=workers_pb2.LogBatch(ref=run.ref, first_line=0, entries=entries("a")))
    await worker.receive_kind("persisted")
    # Three lines read, one sent: the result is applied (total_lines=1 are stored) and
    # both figures are kept for hodei-diagnose.
    await worker.send(
        result=workers_pb2.JobResult(
            ref=run.ref,
            outcome=workers_pb2.JOB_OUTCOME_SUCCEEDED,
            has_exit_code=True,
            total_lines=1,
            has_output_read=True,
            lines_read=3,
            bytes_read=12,
        )
    )
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED)
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT output_lines_read, output_bytes_read, attempt_lines FROM jobs WHERE id = %s",
            (job.id,),
        ).fetchone()
    assert row == (3, 12, 1)
    await worker.close()
