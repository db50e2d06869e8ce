"""Authentication and roles (hodei.server.api.auth, hodei.domain.auth) against a real
server with tokens on: every RPC of every service refuses a call without a token, with
a wrong role, a revoked or an expired token; a client sees only its own jobs; a worker's
stream cannot be taken over by another credential."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness.waits import wait_for_async
from hodei.api.v1 import (
    common_pb2,
    jobs_pb2,
    logs_pb2,
    platform_pb2,
    workers_pb2,
)
from hodei.client.channel import token_interceptors
from hodei.domain.auth import Role, allowed_roles
from hodei.errors import ConfigError
from hodei.server.app import ServerApp
from tests.integration.tokens import expire, make_token, revoke
from tests.integration.wire import FakeWorkerStream, Stubs

pytestmark = pytest.mark.integration

StartServer = Callable[..., Any]

_AUTH = {"mode": "required", "cache_seconds": 0.0}


def _methods() -> list[tuple[str, Any]]:
    """Every RPC of every Hodei service, from the generated descriptors: a new RPC is
    covered without touching this test."""
    found = []
    for module in (jobs_pb2, logs_pb2, workers_pb2, platform_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found.append((f"/{service.full_name}/{method.name}", method))
    return found


METHODS = _methods()


async def _call(channel: grpc.aio.Channel, path: str, method: Any) -> None:
    """Call `path` with an empty request (raw bytes: the refusal comes before decoding)."""
    ident: Callable[[bytes], bytes] = lambda b: b  # noqa: E731
    if method.client_streaming and method.server_streaming:
        call = channel.stream_stream(path, ident, ident)(iter([b""]), timeout=5)
        await call.read()
    elif method.server_streaming:
        await channel.unary_stream(path, ident, ident)(b"", timeout=5).read()
    elif method.client_streaming:
        await channel.stream_unary(path, ident, ident)(iter([b""]), timeout=5)
    else:
        await channel.unary_unary(path, ident, ident)(b"", timeout=5)


def _wrong_role(path: str) -> str:
    allowed = allowed_roles(path)
    return "worker" if Role.WORKER not in allowed else "client"


@pytest.mark.parametrize("case", ["no token", "wrong role", "revoked", "expired", "malformed"])
@pytest.mark.parametrize(("path", "method"), METHODS, ids=[p for p, _ in METHODS])
async def test_every_rpc_refuses_a_call_it_must_not_serve(
    start_server: StartServer, db_url: str, path: str, method: Any, case: str
) -> None:
    app = await start_server(auth=_AUTH)
    token = ""
    if case == "wrong role":
        token = await make_token(db_url, "wrong", _wrong_role(path))
    elif case in ("revoked", "expired"):
        token = await make_token(db_url, "gone", "admin")
        if case == "revoked":
            await revoke(db_url, "gone")
        else:
            expire(db_url, "gone")
    elif case == "malformed":
        token = "hodei_not-a-token"
    expected = (
        grpc.StatusCode.PERMISSION_DENIED
        if case == "wrong role"
        else grpc.StatusCode.UNAUTHENTICATED
    )
    async with grpc.aio.insecure_channel(
        app.address, interceptors=token_interceptors(token)
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _call(channel, path, method)
    assert info.value.code() == expected, info.value.details()
    details = info.value.details() or ""
    assert details and "\n" not in details and len(details) < 300
    assert {"no token": "no token", "revoked": "revoked", "expired": "expired"}.get(
        case, ""
    ) in details


async def test_health_answers_without_a_token(start_server: StartServer) -> None:
    app = await start_server(auth=_AUTH)
    async with grpc.aio.insecure_channel(app.address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_client_sees_and_cancels_only_its_own_jobs(
    start_server: StartServer, stubs_for: Callable[..., Stubs], db_url: str
) -> None:
    app = await start_server(auth=_AUTH, dispatcher={"enabled": False})
    alice = Stubs(app.address, token=await make_token(db_url, "alice", "client"))
    bob = Stubs(app.address, token=await make_token(db_url, "bob", "client"))
    admin = Stubs(app.address, token=await make_token(db_url, "root", "admin"))
    try:
        job = await alice.queue(["true"])
        mine = await alice.jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job.id))
        assert mine.id == job.id
        for call in (
            bob.jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job.id)),
            bob.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id)),
            bob.logs.GetLogs(logs_pb2.GetLogsRequest(job_id=job.id)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await bob.logs.SubscribeLogs(logs_pb2.SubscribeLogsRequest(job_id=job.id)).read()
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        listed = await bob.jobs.ListJobs(jobs_pb2.ListJobsRequest())
        assert list(listed.jobs) == []
        listed = await alice.jobs.ListJobs(jobs_pb2.ListJobsRequest())
        assert [j.id for j in listed.jobs] == [job.id]
        assert [j.id for j in (await admin.jobs.ListJobs(jobs_pb2.ListJobsRequest())).jobs] == [
            job.id
        ]
        cancelled = await alice.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id))
        assert cancelled.job.state == common_pb2.JOB_STATE_CANCELLED
    finally:
        for stubs in (alice, bob, admin):
            await stubs.close()


async def test_register_without_a_worker_token_writes_no_row(
    start_server: StartServer, db_url: str
) -> None:
    app = await start_server(auth=_AUTH)
    client = Stubs(app.address, token=await make_token(db_url, "c", "client"))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.workers.Register(workers_pb2.RegisterRequest(name="intruder"))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "Register needs role admin or worker" in (info.value.details() or "")
    finally:
        await client.close()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM workers").fetchone() == (0,)


async def test_a_hello_for_a_live_worker_from_another_credential_is_refused(
    start_server: StartServer, spawn_worker: Callable[..., Any], db_url: str
) -> None:
    """The issue's hijack: a caller learns a live worker's id (ListWorkers) and says Hello
    with it. Refused with PERMISSION_DENIED; the live worker keeps its stream and runs the
    next job."""
    app = await start_server(auth=_AUTH, dispatcher={"poll_interval": 0.2})
    worker_token = await make_token(db_url, "w1", "worker")
    worker = await spawn_worker(app.address, client={"token": worker_token})
    client = Stubs(app.address, token=await make_token(db_url, "c", "client"))
    other = Stubs(app.address, token=await make_token(db_url, "w2", "worker"))
    same = Stubs(app.address, token=worker_token)
    try:
        listed = await client.workers.ListWorkers(workers_pb2.ListWorkersRequest())
        (live,) = listed.workers
        attempts = [
            (client, grpc.StatusCode.PERMISSION_DENIED, "needs role"),
            (other, grpc.StatusCode.PERMISSION_DENIED, "registered with another token"),
            # Even the worker's own token needs the registration's secret.
            (same, grpc.StatusCode.PERMISSION_DENIED, "wrong session secret"),
        ]
        for stubs, code, words in attempts:
            stream = FakeWorkerStream(stubs, live.id)
            await stream.send(hello=workers_pb2.Hello(worker_id=live.id, slots=1))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stream.receive()
            await stream.close()
            assert info.value.code() == code and words in (info.value.details() or "")
        job = await client.queue(["sh", "-c", "echo still mine"])
        done = await client.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=15)
        assert done.worker_id == live.id
        reply = await client.logs.GetLogs(logs_pb2.GetLogsRequest(job_id=job.id))
        assert [line.line for line in reply.lines] == ["still mine"]
        assert worker.log_text().count("stream open") == 1  # never pushed off its stream
    finally:
        for stubs in (client, other, same):
            await stubs.close()


async def test_a_revoked_token_is_refused_once_the_cache_time_passes(
    start_server: StartServer, db_url: str
) -> None:
    app = await start_server(auth={"mode": "required", "cache_seconds": 1.0})
    stubs = Stubs(app.address, token=await make_token(db_url, "c", "client"))
    try:
        await stubs.platform.GetQueue(platform_pb2.GetQueueRequest())
        await revoke(db_url, "c")

        async def refused() -> bool:
            try:
                await stubs.platform.GetQueue(platform_pb2.GetQueueRequest())
            except grpc.aio.AioRpcError as err:
                return err.code() == grpc.StatusCode.UNAUTHENTICATED
            return False

        await wait_for_async("the revoked token refused", refused, bool, 3.0)
    finally:
        await stubs.close()
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT last_used_at IS NOT NULL FROM api_tokens WHERE name = 'c'"
        ).fetchone()
    assert row == (True,)


async def test_revoking_a_worker_token_cuts_its_open_stream(
    start_server: StartServer, spawn_worker: Callable[..., Any], db_url: str
) -> None:
    """A leaked worker token, revoked: its open stream (the jobs, their secrets) ends
    within the cache time with UNAUTHENTICATED and the reason, the worker cannot come
    back with it, and a job queued afterwards is not given to it."""
    app = await start_server(
        auth={"mode": "required", "cache_seconds": 0.5}, dispatcher={"poll_interval": 0.2}
    )
    worker = await spawn_worker(
        app.address, client={"token": await make_token(db_url, "w", "worker")}
    )
    client = Stubs(app.address, token=await make_token(db_url, "c", "client"))
    try:
        await revoke(db_url, "w")
        await worker.wait_log(r"token 'w' was revoked", seconds=10)

        async def connected() -> list[bool]:
            listed = await client.workers.ListWorkers(workers_pb2.ListWorkersRequest())
            return [w.connected for w in listed.workers]

        await wait_for_async("the stream to be gone", connected, lambda c: c == [False], 5.0)
        assert app.token_watch is not None and app.token_watch.cut == 1
        job = await client.queue(["true"])
        await asyncio.sleep(1.0)  # several dispatch polls and reconnect attempts
        got = await client.jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job.id))
        assert got.state == common_pb2.JOB_STATE_PENDING
        assert await connected() == [False]
    finally:
        await client.close()


async def test_a_client_sees_the_fleet_and_the_queue_but_only_its_own_job_ids(
    start_server: StartServer, spawn_worker: Callable[..., Any], db_url: str
) -> None:
    app = await start_server(auth=_AUTH, dispatcher={"poll_interval": 0.2})
    await spawn_worker(app.address, worker={"prefetch": 0})
    mine = Stubs(app.address, token=await make_token(db_url, "a", "client"))
    other = Stubs(app.address, token=await make_token(db_url, "b", "client"))
    admin = Stubs(app.address)
    try:
        running = await mine.queue(["sleep", "30"])
        await mine.wait_state(running.id, common_pb2.JOB_STATE_RUNNING, seconds=15)
        queued = await mine.queue(["true"])

        async def seen(stubs: Stubs) -> tuple[list[str], int, list[str]]:
            workers = await stubs.workers.ListWorkers(workers_pb2.ListWorkersRequest())
            queue = await stubs.platform.GetQueue(platform_pb2.GetQueueRequest())
            running_ids = [i for w in workers.workers for i in w.running_job_ids]
            return running_ids, queue.depth, [j.job_id for j in queue.jobs]

        assert await seen(mine) == ([running.id], 1, [queued.id])
        assert await seen(admin) == ([running.id], 1, [queued.id])
        assert await seen(other) == ([], 1, [])  # the fleet and the depth, no ids
        await mine.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=running.id, force=True))
    finally:
        for stubs in (mine, other, admin):
            await stubs.close()


async def test_server_info_says_whether_authentication_is_off(
    start_server: StartServer, db_url: str
) -> None:
    off = await start_server(auth={"mode": "off"})
    async with Stubs(off.address) as stubs:
        assert (await stubs.platform.GetServerInfo(platform_pb2.GetServerInfoRequest())).insecure
    on = await start_server(auth=_AUTH)
    token = await make_token(db_url, "c", "client")
    async with Stubs(on.address, token=token) as stubs:
        info = await stubs.platform.GetServerInfo(platform_pb2.GetServerInfoRequest())
    assert not info.insecure


async def test_no_authentication_on_a_public_address_is_refused(
    test_settings: Callable[..., Any],
) -> None:
    app = ServerApp(test_settings(server={"host": "0.0.0.0"}, auth={"mode": "off"}))
    with pytest.raises(ConfigError) as info:
        await app.start()
    assert "refusing to listen on 0.0.0.0:0 without authentication" in str(info.value)
    assert "HODEI_INSECURE=true" in str(info.value)
    insecure = ServerApp(test_settings(server={"host": "0.0.0.0"}, auth={"insecure": True}))
    await insecure.start()
    try:
        assert insecure.port > 0
    finally:
        await insecure.stop(grace=1.0)


async def test_a_job_does_not_see_its_workers_token(
    start_server: StartServer, spawn_worker: Callable[..., Any], db_url: str
) -> None:
    app = await start_server(auth=_AUTH, dispatcher={"poll_interval": 0.2})
    worker_token = await make_token(db_url, "w", "worker")
    await spawn_worker(app.address, client={"token": worker_token})
    async with Stubs(app.address, token=await make_token(db_url, "c", "client")) as client:
        job = await client.queue(["sh", "-c", "env"])
        await client.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=15)
        reply = await client.logs.GetLogs(logs_pb2.GetLogsRequest(job_id=job.id))
    lines = [line.line for line in reply.lines]
    hodei = [line.split("=")[0] for line in lines if line.startswith("HODEI_")]
    assert lines and "HODEI_TOKEN" not in hodei, hodei
    assert not any(worker_token in line for line in lines)


async def test_another_callers_idempotency_key_does_not_answer_its_jobs(
    start_server: StartServer, db_url: str
) -> None:
    app = await start_server(auth=_AUTH, dispatcher={"enabled": False})
    request = jobs_pb2.QueueJobRequest(
        spec=jobs_pb2.JobSpec(command=["true"]), idempotency_key="shared-key"
    )
    async with (
        Stubs(app.address, token=await make_token(db_url, "alice", "client")) as alice,
        Stubs(app.address, token=await make_token(db_url, "bob", "client")) as bob,
    ):
        first = await alice.jobs.QueueJob(request)
        again = await alice.jobs.QueueJob(request)
        assert again.job.id == first.job.id  # the owner's retry is replayed
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await bob.jobs.QueueJob(request)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "used by another caller" in (info.value.details() or "")
