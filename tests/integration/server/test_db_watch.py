"""The database watch against a real PostgreSQL stopped and started from outside: the
server's grpc.health.v1 answer follows the database, with one log line each way."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness.processes import wait_gone_async
from harness.waits import wait_for_async
from hodei.api.v1 import common_pb2, jobs_pb2, jobs_pb2_grpc, workers_pb2
from hodei.db.databases import create_database
from hodei.db.embedded import start_again
from tests.integration.wire import FakeWorkerStream

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[Any]]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
async def private_postgres() -> AsyncIterator[Any]:
    """A PostgreSQL of this test's own (never the shared server: the test stops it).
    A short path: its unix socket lives in the data directory."""
    import pgserver

    directory = Path(tempfile.mkdtemp(prefix="hw-", dir="/tmp"))
    server = await asyncio.to_thread(pgserver.get_server, directory / "pg", "stop")
    try:
        yield server
    finally:
        await asyncio.to_thread(server.cleanup)
        shutil.rmtree(directory, ignore_errors=True)


async def test_health_is_not_serving_while_the_database_is_stopped(
    start_server: StartServer, private_postgres: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hodei.server.db_watch")
    caplog.set_level(logging.INFO, logger="hodei.server.supervisor")
    url = await asyncio.to_thread(create_database, private_postgres.get_uri(), "hodei")
    app = await start_server(
        database={"url": url}, recovery={"reaper_interval": 0.2}, retention={"interval": 0.2}
    )
    channel = grpc.aio.insecure_channel(app.address)
    health = health_pb2_grpc.HealthStub(channel)

    async def status() -> int:
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        return int(answer.status)

    try:
        assert await status() == SERVING
        # A fast shutdown of the postmaster, as an operator's `pg_ctl stop` does.
        pid = private_postgres.get_pid()
        os.kill(pid, signal.SIGINT)
        await wait_gone_async(pid, 30)
        await wait_for_async("health NOT_SERVING", status, lambda s: s == NOT_SERVING, 15)
        # Meanwhile a call fails at once, with one line, not at its deadline.
        jobs = jobs_pb2_grpc.JobExecutionServiceStub(channel)
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await jobs.ListJobs(jobs_pb2.ListJobsRequest(), timeout=20)
        assert time.monotonic() - began < 2
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert refused.value.details() == "the server cannot reach its database; retry later"
        await asyncio.to_thread(start_again, private_postgres)
        await wait_for_async("health SERVING again", status, lambda s: s == SERVING, 20)
    finally:
        await channel.close()
        await app.stop(grace=1.0)
    lines = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "hodei.server.db_watch"
    ]
    assert [level for level, _ in lines] == ["WARNING", "INFO"], lines
    assert lines[0][1].startswith("database unreachable (") and "NOT_SERVING" in lines[0][1]
    assert lines[1][1].startswith("database reachable again after ")

    # The loops that hit the outage each said so once, without a traceback, and once
    # that they run again; none of them logged an ERROR.
    loops = [r for r in caplog.records if r.name == "hodei.server.supervisor"]
    assert not [r.getMessage() for r in loops if r.levelno >= logging.ERROR]
    away = [r.getMessage().split(":")[0] for r in loops if r.levelno == logging.WARNING]
    back = [r.getMessage().split(":")[0] for r in loops if "reachable again" in r.getMessage()]
    assert len(away) == len(set(away)) and sorted(away) == sorted(back), (away, back)
    assert away, "no loop noticed the outage"
    assert "retention" in away, away  # it opens a connection of its own every round
    assert "Traceback" not in caplog.text  # the dispatcher's LISTEN connection breaks


async def test_an_ack_sent_during_an_outage_does_not_expire_the_job(
    start_server: StartServer,
    private_postgres: Any,
    stubs_for: Callable[[str], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The chaos suite's double run: a worker started its job while the database was
    # down, its JobStarted could not be stored, and the recovery loop requeued the job
    # ("not acknowledged in time") as soon as the database was back, before the
    # worker's resend arrived. An ack deadline is judged only once the loop has watched
    # the database for a whole ack timeout again.
    caplog.set_level(logging.INFO, logger="hodei.server.supervisor")
    url = await asyncio.to_thread(create_database, private_postgres.get_uri(), "hodei")
    app = await start_server(
        database={"url": url},
        dispatcher={"ack_timeout": 2.0, "poll_interval": 0.2},
        recovery={"reaper_interval": 0.1},
    )
    stubs = stubs_for(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    job = await stubs.queue(["true"])
    run = await worker.receive_kind("run")

    health = health_pb2_grpc.HealthStub(stubs.channel)

    async def status() -> int:
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        return int(answer.status)

    pid = private_postgres.get_pid()
    os.kill(pid, signal.SIGINT)
    await wait_gone_async(pid, 30)
    await wait_for_async("health NOT_SERVING", status, lambda s: s == NOT_SERVING, 15)
    # Refused at once, not left waiting on the pool: the worker will resend it.
    await worker.send(started=workers_pb2.JobStarted(ref=run.ref, pid=4242))
    refused = await worker.receive_kind("rejected", seconds=2)
    assert refused.code == "UNAVAILABLE"
    await asyncio.sleep(2.5)  # the ack deadline passes while the database is away
    await asyncio.to_thread(start_again, private_postgres)
    await wait_for_async("health SERVING again", status, lambda s: s == SERVING, 30)
    # The recovery loop runs again (its blocked query returns, or the supervisor
    # restarts it): 0.5 s is five sweeps, time enough to requeue, were it allowed to.
    await asyncio.sleep(0.5)
    await worker.send(started=workers_pb2.JobStarted(ref=run.ref, pid=4242))
    running = await stubs.wait_state(job.id, common_pb2.JOB_STATE_RUNNING)
    assert running.attempts == 1
    await worker.close()
