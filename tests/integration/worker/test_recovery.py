"""Worker failure and reconnection with a real server and real worker processes:
a worker killed mid-job, a server restart under a connected worker, and an idle
stream with short HTTP/2 keepalive."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from harness.processes import alive
from harness.waits import wait_for_async, wait_until_async
from hodei.api.v1 import common_pb2
from tests.integration.conftest import SpawnWorker
from tests.integration.wire import Stubs
from tests.integration.worker.db_rows import job_logs, worker_row

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[Any]]
S = common_pb2


@pytest.fixture
def server_errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """ERROR records logged in this process (the in-process server, grpc)."""
    caplog.set_level(logging.INFO)

    def errors() -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]

    return errors


async def test_worker_killed_mid_job_and_the_job_is_finished_by_another(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, db_url: str
) -> None:
    app = await start_server(
        recovery={"heartbeat_interval": 0.3, "heartbeat_miss_limit": 3, "reaper_interval": 0.2}
    )
    first = await spawn_worker(app.address)
    stubs: Stubs = stubs_for(app.address)
    job = await stubs.queue(
        ["/bin/sh", "-c", "echo attempt start; sleep 2; echo attempt done"], max_attempts=3
    )
    await stubs.wait_state(job.id, S.JOB_STATE_RUNNING, seconds=15)
    # The first line streamed, then the kill.
    await wait_for_async(
        "the first attempt to stream a line", lambda: job_logs(db_url, job.id), bool, 10
    )
    first.kill()  # SIGKILL: no goodbye, the server must notice by itself
    await first.wait_exit()
    second = await spawn_worker(app.address)
    done = await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=30)
    assert done.attempts == 2
    assert done.worker_id == await second.worker_id()
    state, _ = await worker_row(db_url, await first.worker_id())
    assert state == "LOST"
    logs = await job_logs(db_url, job.id)
    # The second attempt's lines are all there; the first attempt's are kept, marked as such.
    assert [line for attempt, _, line in logs if attempt == 2] == ["attempt start", "attempt done"]
    assert [line for attempt, _, line in logs if attempt == 1] == ["attempt start"]
    assert second.error_lines() == []


async def test_the_jobs_of_a_killed_worker_are_killed_with_their_grandchildren(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, tmp_path: Path
) -> None:
    # Otherwise they would run on while the server gives the job to another worker.
    app = await start_server()
    worker = await spawn_worker(app.address)
    stubs: Stubs = stubs_for(app.address)
    pids = tmp_path / "pids"
    job = await stubs.queue(["/bin/sh", "-c", f"sleep 60 & echo $$ $! > {pids}; wait"])
    await stubs.wait_state(job.id, S.JOB_STATE_RUNNING, seconds=15)
    await wait_until_async(
        "the job to start its background process",
        lambda: len(pids.read_text().split() if pids.exists() else []) >= 2,
        10,
    )
    shell, grandchild = (int(p) for p in pids.read_text().split())
    assert alive(shell) and alive(grandchild)
    worker.kill()  # SIGKILL: the worker can do nothing; its guard sees the pipe end
    await worker.wait_exit()
    await wait_until_async(
        "the killed worker's job and its grandchild to end",
        lambda: not (alive(shell) or alive(grandchild)),
        5,
    )


async def test_server_restart_worker_reconnects_and_delivers_buffered_output(
    start_server: StartServer,
    spawn_worker: SpawnWorker,
    stubs_for: Any,
    db_url: str,
    server_errors: Callable[[], list[str]],
) -> None:
    app = await start_server()
    port = app.port
    worker = await spawn_worker(app.address, worker={"reconnect_max_backoff": 0.5})
    worker_id = await worker.worker_id()
    stubs: Stubs = stubs_for(app.address)
    script = "for i in $(seq 1 20); do echo line $i; echo err $i >&2; sleep 0.05; done"
    job = await stubs.queue(["/bin/sh", "-c", script])
    await stubs.wait_state(job.id, S.JOB_STATE_RUNNING, seconds=15)
    await app.stop(grace=1.0)
    # The job finishes while the server is down: its lines and result wait in the worker.
    await worker.wait_log(r"job finished: SUCCEEDED", seconds=15)
    await worker.wait_log(r"reconnecting in", seconds=10)
    restarted = await start_server(server={"port": port})
    await worker.wait_log(r"stream open", count=2, seconds=20)
    stubs2: Stubs = stubs_for(restarted.address)
    done = await stubs2.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=20)
    assert done.exit_code == 0 and done.attempts == 1
    assert done.worker_id == worker_id  # the same identity carried on across the restart
    logs = await job_logs(db_url, job.id)
    assert [line for _, err, line in logs if not err] == [f"line {i}" for i in range(1, 21)]
    assert [line for _, err, line in logs if err] == [f"err {i}" for i in range(1, 21)]
    # It keeps working on the new server.
    job2 = await stubs2.queue(["/bin/sh", "-c", "echo after restart"])
    await stubs2.wait_state(job2.id, S.JOB_STATE_SUCCEEDED, seconds=15)
    assert await job_logs(db_url, job2.id) == [(1, False, "after restart")]
    assert worker.error_lines() == []
    assert server_errors() == []


async def test_idle_stream_with_short_keepalive_has_no_errors(
    start_server: StartServer,
    spawn_worker: SpawnWorker,
    stubs_for: Any,
    server_errors: Callable[[], list[str]],
) -> None:
    keepalive = {"keepalive_time_ms": 200, "keepalive_timeout_ms": 2000}
    app = await start_server(server={"min_ping_interval_ms": 100, **keepalive})
    worker = await spawn_worker(app.address, server=keepalive)
    await asyncio.sleep(6)  # 30 keepalive periods with nothing on the stream
    log = worker.log_text()
    assert log.count("stream open") == 1, log
    assert "worker stream ended" not in log and "reconnecting" not in log, log
    assert worker.error_lines() == []
    assert server_errors() == []
    # ...and the stream still works.
    stubs: Stubs = stubs_for(app.address)
    job = await stubs.queue(["/bin/true"])
    await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=15)


async def test_server_that_does_not_know_the_worker_gets_a_new_registration(
    start_server: StartServer,
    spawn_worker: SpawnWorker,
    stubs_for: Any,
    make_db_url: Callable[[], str],
) -> None:
    # Authentication off: a token of the first database would be unknown in the second
    # one, and this test is about the worker's id, not its token.
    app = await start_server(auth={"mode": "off"})
    port = app.port
    worker = await spawn_worker(app.address, worker={"reconnect_max_backoff": 0.5})
    old_id = await worker.worker_id()
    await app.stop(grace=1.0)
    # Same address, another database: the worker's id is unknown there (NOT_FOUND).
    fresh = await start_server(
        server={"port": port}, database={"url": make_db_url()}, auth={"mode": "off"}
    )
    await worker.wait_log(r"stream open", count=2, seconds=20)
    assert "registering again" in worker.log_text()
    new_id = await worker.worker_id()
    assert new_id != old_id
    stubs: Stubs = stubs_for(fresh.address)
    job = await stubs.queue(["/bin/sh", "-c", "echo hi"])
    done = await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=15)
    assert done.worker_id == new_id
    assert worker.error_lines() == []
