"""JobExecutionService / PlatformService over real gRPC: statuses for bad input,
health and reflection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hodei.api.v1 import common_pb2, jobs_pb2, platform_pb2
from hodei.domain.jobs import MAX_ENV_BYTES
from tests.integration.wire import Stubs

StartServer = Callable[..., Awaitable[Any]]


pytestmark = pytest.mark.integration


@pytest.fixture
async def stubs(start_server: StartServer) -> AsyncIterator[Stubs]:
    app = await start_server(dispatcher={"enabled": False})
    stubs = Stubs(app.address)
    yield stubs
    await stubs.close()


def table_counts(db_url: str) -> tuple[int, ...]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM job_queue), "
            "(SELECT count(*) FROM domain_events), (SELECT count(*) FROM outbox_events)"
        ).fetchone()
    assert row is not None
    return tuple(row)


async def test_queue_get_list(stubs: Stubs, db_url: str) -> None:
    job = await stubs.queue(
        ["/bin/echo", "hi"], env={"A": "1"}, labels={"hodei.io/test": "true"}, timeout_seconds=5
    )
    assert job.state == common_pb2.JOB_STATE_PENDING and job.attempts == 0
    assert job.max_attempts == 3 and job.correlation_id
    got = await stubs.jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job.id))
    assert got.spec.command == ["/bin/echo", "hi"] and got.spec.env["A"] == "1"
    listed = await stubs.jobs.ListJobs(
        jobs_pb2.ListJobsRequest(
            states=[common_pb2.JOB_STATE_PENDING], labels={"hodei.io/test": "true"}
        )
    )
    assert [j.id for j in listed.jobs] == [job.id]
    none = await stubs.jobs.ListJobs(
        jobs_pb2.ListJobsRequest(states=[common_pb2.JOB_STATE_RUNNING])
    )
    assert list(none.jobs) == []
    assert table_counts(db_url) == (1, 1, 1, 1)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"command": []}, "command must not be empty"),
        ({"command": ["x"], "timeout_seconds": -1}, "timeout_seconds"),
        ({"command": ["x"], "env": {"K": "v" * (MAX_ENV_BYTES + 1)}}, "env is"),
        ({"command": ["x"] * 2000}, "arguments"),
    ],
)
async def test_queue_bad_input_is_invalid_argument_and_writes_nothing(
    stubs: Stubs, db_url: str, spec: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.jobs.QueueJob(jobs_pb2.QueueJobRequest(spec=jobs_pb2.JobSpec(**spec)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details() or ""
    assert fragment in details and "\n" not in details and "Traceback" not in details
    assert table_counts(db_url) == (0, 0, 0, 0)


async def test_missing_spec_is_invalid_argument(stubs: Stubs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.jobs.QueueJob(jobs_pb2.QueueJobRequest())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("job_id", "code"),
    [
        ("5f0f3c4e-0000-4000-8000-000000000000", grpc.StatusCode.NOT_FOUND),
        ("not-a-uuid", grpc.StatusCode.INVALID_ARGUMENT),
        ("", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_unknown_or_malformed_job_id(
    stubs: Stubs, job_id: str, code: grpc.StatusCode
) -> None:
    for call in (
        stubs.jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job_id)),
        stubs.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job_id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == code
        assert job_id in (info.value.details() or "")


async def test_cancel_pending_then_cancel_again_is_failed_precondition(stubs: Stubs) -> None:
    job = await stubs.queue(["true"])
    cancelled = await stubs.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id))
    assert cancelled.job.state == common_pb2.JOB_STATE_CANCELLED
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_queue_and_server_info(stubs: Stubs) -> None:
    await stubs.queue(["true"])
    await stubs.queue(["true"])
    queue = await stubs.platform.GetQueue(platform_pb2.GetQueueRequest())
    assert queue.depth == 2 and len(queue.jobs) == 2 and queue.oldest_age_seconds >= 0
    assert {c.state: c.count for c in queue.job_counts} == {common_pb2.JOB_STATE_PENDING: 2}
    info = await stubs.platform.GetServerInfo(platform_pb2.GetServerInfoRequest())
    assert info.server_id and info.schema_version >= 1
    assert not info.dispatcher_enabled and info.outbox_relay_enabled
    assert not info.HasField("dispatcher_last_cycle_at")


async def test_health_and_reflection(stubs: Stubs) -> None:
    health = health_pb2_grpc.HealthStub(stubs.channel)
    for service in ("", "hodei.api.v1.JobExecutionService", "hodei.api.v1.WorkerAgentService"):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(stubs.channel)
    call = reflect.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = set()
    async for response in call:
        names |= {s.name for s in response.list_services_response.service}
    assert {
        "hodei.api.v1.JobExecutionService",
        "hodei.api.v1.LogStreamService",
        "hodei.api.v1.WorkerAgentService",
        "hodei.api.v1.PlatformService",
        "grpc.health.v1.Health",
    } <= names


async def test_unexpected_error_is_internal_without_leaking_and_logged(
    start_server: StartServer, caplog: Any
) -> None:
    app = await start_server(dispatcher={"enabled": False})

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail from deep inside")

    app.services.job_reads.get_job = broken
    stubs = Stubs(app.address)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stubs.jobs.GetJob(
                jobs_pb2.GetJobRequest(job_id="5f0f3c4e-0000-4000-8000-000000000000")
            )
    finally:
        await stubs.close()
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (info.value.details() or "")
    logged = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert logged and "secret detail" in str(logged[0].exc_info[1])
