"""Issue 13 item 6, as a client sees it: every limit answers INVALID_ARGUMENT (or
RESOURCE_EXHAUSTED from grpc itself) with one line, and never a server traceback;
large results come back in pages."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import psycopg
import pytest

from hodei.api.v1 import common_pb2, jobs_pb2, logs_pb2, workers_pb2
from hodei.client import HodeiClient
from hodei.domain.jobs import MAX_SPEC_BYTES, MAX_STORED_LINE_BYTES
from hodei.domain.workers import MAX_SLOTS
from tests.integration.cli_process import hodei
from tests.integration.tokens import server_token
from tests.integration.wire import FakeWorkerStream, Stubs

StartServer = Callable[..., Awaitable[Any]]

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
#: What a client of grpc's defaults accepts: a ListJobs page must fit in it.
GRPC_DEFAULT_RECEIVE = 4 * MIB


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """No traceback from the server. The test's own grpc client may log one at DEBUG
    when the server ends a stream while it still sends (grpc.aio's request iterator):
    that is the client side of this test, not what the server wrote; so is asyncio's
    note of a client task of this test that ended with an error."""
    server = [
        r
        for r in caplog.records
        if r.name != "asyncio" and not r.pathname.endswith("grpc/aio/_call.py")
    ]
    text = "\n".join(logging.Formatter().format(r) for r in server)
    assert "Traceback" not in text, text[-2000:]
    assert not [r.getMessage() for r in server if r.exc_info], text[-2000:]


def _big_stubs(address: str) -> Stubs:
    return Stubs(
        address,
        options=[
            ("grpc.max_send_message_length", 100 * MIB),
            ("grpc.max_receive_message_length", 100 * MIB),
        ],
    )


async def test_spec_limits_are_invalid_argument_naming_field_and_limit(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = await start_server()
    stubs = _big_stubs(app.address)
    try:
        cases: list[tuple[dict[str, Any], str]] = [
            (
                {"labels": {"k": "v" * 10_485_760}},
                "labels['k']: value is 10485760 bytes; at most 4096",
            ),
            ({"working_dir": "/" * 5000}, "working_dir is 5000 bytes; at most 4096"),
            (
                {
                    "command": ["x" * 100_000, "y" * 28_000],
                    "labels": {f"k{i}": "v" * 4000 for i in range(40)},
                },
                f"the job spec is 288110 bytes; at most {MAX_SPEC_BYTES}",
            ),
        ]
        for spec, message in cases:
            args: dict[str, Any] = {"command": ["x"], **spec}
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stubs.queue(**args)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details() == message
        # The seven jobs with 10 MB labels: each refused, none stored.
        for i in range(7):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stubs.queue(["true"], labels={"big": str(i) * 10_485_760})
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        listed = await stubs.jobs.ListJobs(jobs_pb2.ListJobsRequest())
        assert list(listed.jobs) == []
        # Over the server's receive limit (64 MiB) grpc itself refuses the request.
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stubs.queue(["true"], labels={"big": "v" * 70 * MIB})
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await stubs.close()
    _no_traceback(caplog)


async def test_list_jobs_pages_under_the_default_receive_limit(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = await start_server(dispatcher={"enabled": False})
    # Jobs near the spec bound (~240 KiB of labels each): 40 of them are ~10 MB.
    labels = {f"k{i:02}": "v" * 4000 for i in range(60)}
    async with HodeiClient(app.address, token=server_token(app.address)) as client:
        queued = []
        for _ in range(4):
            queued += await client.queue_jobs([{"command": ["true"], "labels": labels}] * 10)
        newest_first = [j.id for j in reversed(queued)]
        # A channel with grpc's default 4 MiB receive limit reads every page.
        plain = Stubs(app.address)
        try:
            seen: list[str] = []
            token = ""
            pages = 0
            while True:
                page = await plain.jobs.ListJobs(
                    jobs_pb2.ListJobsRequest(limit=1000, page_token=token)
                )
                assert page.ByteSize() < GRPC_DEFAULT_RECEIVE
                seen += [j.id for j in page.jobs]
                pages += 1
                token = page.next_page_token
                if not token:
                    break
            assert pages >= 3
            assert sorted(seen) == sorted(newest_first) and len(set(seen)) == 40
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await plain.jobs.ListJobs(jobs_pb2.ListJobsRequest(page_token="not-a-token"))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "page_token is not one this server issued" in (info.value.details() or "")
        finally:
            await plain.close()
        # The client follows pages up to its limit; a small limit is one short page.
        assert [j.id for j in await client.list_jobs(limit=1000)] == seen
        assert len(await client.list_jobs(limit=5)) == 5
    _no_traceback(caplog)


async def test_undecodable_requests_are_invalid_argument_without_traceback(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = await start_server()
    stubs = Stubs(app.address)
    try:
        garbage = b"\xff\xff\xff\xff"
        queue = stubs.channel.unary_unary(
            "/hodei.api.v1.JobExecutionService/QueueJob",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await queue(garbage)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == (
            "request could not be decoded as hodei.api.v1.QueueJobRequest (4 bytes)"
        )
        subscribe = stubs.channel.unary_stream(
            "/hodei.api.v1.LogStreamService/SubscribeLogs",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in subscribe(garbage):
                pass
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "hodei.api.v1.SubscribeLogsRequest" in (info.value.details() or "")
        # The server still answers well-formed calls.
        assert (await stubs.jobs.ListJobs(jobs_pb2.ListJobsRequest())).jobs is not None
    finally:
        await stubs.close()
    _no_traceback(caplog)


async def test_hello_with_slots_out_of_range_is_invalid_argument(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = await start_server()
    stubs = Stubs(app.address)
    try:
        reg = await stubs.workers.Register(
            workers_pb2.RegisterRequest(name="fake", hostname="localhost", pid=1, slots=1)
        )
        stream = FakeWorkerStream(stubs, reg.worker_id)
        await stream.send(
            hello=workers_pb2.Hello(
                worker_id=reg.worker_id, slots=2**32 - 1, session_secret=reg.session_secret
            )
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stream.receive()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == f"slots is 4294967295; it must be between 1 and {MAX_SLOTS}"
        await stream.close()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stubs.workers.Register(workers_pb2.RegisterRequest(name="f", slots=2**32 - 1))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await stubs.close()
    _no_traceback(caplog)


async def _raw_stream_after_hello(stubs: Stubs, after: bytes) -> grpc.aio.AioRpcError:
    reg = await stubs.workers.Register(
        workers_pb2.RegisterRequest(name="fake", hostname="localhost", pid=1, slots=1)
    )
    hello = workers_pb2.WorkerMessage(
        hello=workers_pb2.Hello(worker_id=reg.worker_id, slots=1, session_secret=reg.session_secret)
    )
    call = stubs.channel.stream_stream(
        "/hodei.api.v1.WorkerAgentService/WorkerStream",
        request_serializer=None,
        response_deserializer=workers_pb2.ServerMessage.FromString,
    )()
    await call.write(hello.SerializeToString())
    first = await call.read()
    assert first.WhichOneof("payload") == "welcome"
    await call.write(after)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        while True:
            message = await call.read()
            assert message is not grpc.aio.EOF, "the stream ended with OK"
    return info.value


@pytest.mark.parametrize(
    ("after", "reason"),
    [
        (
            b"\xff\xff\xff",
            "a message after Hello: request could not be decoded as "
            "hodei.api.v1.WorkerMessage (3 bytes)",
        ),
        (b"", "a message after Hello has no payload (an empty hodei.api.v1.WorkerMessage)"),
    ],
)
async def test_a_malformed_message_after_hello_ends_the_stream_with_the_reason(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, after: bytes, reason: str
) -> None:
    caplog.set_level(logging.DEBUG)
    app = await start_server()
    stubs = Stubs(app.address)
    try:
        error = await _raw_stream_after_hello(stubs, after)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == reason
    finally:
        await stubs.close()
    _no_traceback(caplog)


async def test_a_5_mb_line_from_any_client_is_stored_in_pieces(
    start_server: StartServer, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = await start_server(dispatcher={"poll_interval": 0.2})
    stubs = _big_stubs(app.address)
    try:
        worker, _ = await FakeWorkerStream.connect(stubs)
        job = await stubs.queue(["true"])
        run = await worker.receive_kind("run")
        await worker.send(ack=workers_pb2.JobAck(ref=run.ref, accepted=True))
        await worker.send(started=workers_pb2.JobStarted(ref=run.ref, pid=42))
        line = "é" + "a" * (5 * 1000 * 1000 - 3) + "é"  # 5,000,001 bytes, not ASCII
        entries = [workers_pb2.LogEntry(line=line), workers_pb2.LogEntry(line="after")]
        await worker.send(logs=workers_pb2.LogBatch(ref=run.ref, first_line=0, entries=entries))
        persisted = await worker.receive_kind("persisted")
        assert persisted.next_line == 2  # the worker's two lines, whatever was split
        with psycopg.connect(db_url) as conn:
            rows = conn.execute(
                "SELECT octet_length(line), line FROM job_logs WHERE job_id = %s ORDER BY sequence",
                (job.id,),
            ).fetchall()
        assert [r[0] for r in rows[:-1]] == [MIB] * 4 + [5_000_001 - 4 * MIB]
        assert "".join(r[1] for r in rows[:-1]) == line and rows[-1][1] == "after"
        await worker.close()
    finally:
        await stubs.close()
    _no_traceback(caplog)


#: 100 MB as the issue has it (~8 s of output and ~6 s of reading here, measured).
LINE_BYTES = 100_000_000


async def test_a_100_mb_line_reads_back_through_get_logs_and_the_cli(
    start_server: StartServer, spawn_worker: Callable[..., Any]
) -> None:
    app = await start_server(dispatcher={"poll_interval": 0.2})
    await spawn_worker(app.address)
    stubs = Stubs(app.address)  # grpc's default 4 MiB receive limit
    try:
        started = time.monotonic()
        job = await stubs.queue(
            ["sh", "-c", f"head -c {LINE_BYTES} /dev/zero | tr '\\0' a; echo; echo end"]
        )
        await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=60)
        ran = time.monotonic() - started
        total, pages, after = 0, 0, 0
        tail = ""
        while True:
            page = await stubs.logs.GetLogs(
                logs_pb2.GetLogsRequest(job_id=job.id, after_sequence=after, limit=10_000)
            )
            pages += 1
            assert all(len(x.line) <= MAX_STORED_LINE_BYTES for x in page.lines)
            total += sum(len(x.line) for x in page.lines)
            if page.lines:
                after = page.lines[-1].sequence
                tail = page.lines[-1].line
            if page.complete or not page.lines:
                break
        assert total == LINE_BYTES + len("end") and tail == "end"
        assert pages >= 25  # 4 MiB pages of 1 MiB rows
        read = time.monotonic() - started - ran
        for argv in (["job", "logs", job.id], ["job", "logs", "-f", job.id]):
            result = await hodei(*argv, server=app.address, seconds=120)
            assert result.returncode == 0, str(result)[-2000:]
            # The pieces of the split line are printed as lines of their own.
            assert len(result.stdout.replace("\n", "")) == LINE_BYTES + len("end"), argv
        print(f"100 MB line: ran {ran:.1f} s, GetLogs read {read:.1f} s in {pages} pages")
    finally:
        await stubs.close()
