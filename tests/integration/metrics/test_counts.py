"""The figures /metrics gives after real work, against the tables: a real server, a
real worker process and a real PostgreSQL, scraped over HTTP."""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from harness.launchers.base import free_port
from hodei.api.v1 import common_pb2, jobs_pb2, logs_pb2
from tests.integration.conftest import SpawnWorker
from tests.integration.metrics.scrape import Scrape, scrape, tables, wait_scrape
from tests.unit.metrics.promtool import promtool

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[Any]]
S = common_pb2
JOBS = "hodei.api.v1.JobExecutionService"
FAST = {"refresh_interval": 0.2}


async def test_counts_after_jobs_match_the_tables(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, db_url: str
) -> None:
    app = await start_server(metrics=FAST)
    worker_port = free_port()
    await spawn_worker(app.address, slots=2, metrics={"worker_port": worker_port})
    stubs = stubs_for(app.address)
    good = ["/bin/sh", "-c", "echo one; echo 'caf\u00e9 two' >&2; printf three"]
    bad = ["/bin/sh", "-c", "echo failing; exit 3"]
    jobs = [await stubs.queue(good) for _ in range(4)] + [await stubs.queue(bad) for _ in range(2)]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.queue([])  # no command: INVALID_ARGUMENT
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for job in jobs[:4]:
        await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=20)
    for job in jobs[4:]:
        await stubs.wait_state(job.id, S.JOB_STATE_FAILED, seconds=20)

    # The database-wide gauges follow the tables one refresh later.
    page = await wait_scrape(
        app.metrics_port,
        "the worker's slots free and every outbox row published",
        lambda p: (
            p.value("hodei_worker_slots_busy") == 0
            and p.value("hodei_outbox_unpublished") == 0
            and p.value("hodei_workers", state="READY") == 1
        ),
    )
    t = await tables(db_url)
    assert page.value("hodei_jobs_submitted_total") == t["jobs"] == 6
    for state in ("SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"):
        expected = t["jobs_by_state"].get(state, 0)
        assert page.value("hodei_jobs_finished_total", state=state) == expected, state
    assert page.value("hodei_job_queue_wait_seconds_count") == t["attempts"] == 6
    assert page.value("hodei_job_run_duration_seconds_count") == 6
    assert page.value("hodei_log_lines_ingested_total") == t["log_lines"] == 14
    assert page.value("hodei_log_bytes_ingested_total") == t["log_bytes"]
    assert page.value("hodei_queue_depth") == t["queue"] == 0
    assert page.value("hodei_queue_oldest_wait_seconds") == 0
    for state, count in t["workers_by_state"].items():
        assert page.value("hodei_workers", state=state) == count, state
    assert page.value("hodei_worker_slots") == t["slots"] == 2
    assert page.value("hodei_outbox_publish_lag_seconds") == 0
    assert page.value("hodei_outbox_published_total") > 0
    assert page.value("hodei_dispatcher_cycles_total") > 0
    assert page.value("hodei_dispatcher_last_cycle_timestamp_seconds") > 1.7e9
    assert page.value("hodei_database_up") == 1

    handled = "hodei_grpc_server_handled_total"
    assert page.value(handled, grpc_service=JOBS, grpc_method="QueueJob", grpc_code="OK") == 6
    assert (
        page.value(handled, grpc_service=JOBS, grpc_method="QueueJob", grpc_code="INVALID_ARGUMENT")
        == 1
    )
    assert (
        page.value(
            "hodei_grpc_server_handling_seconds_count", grpc_service=JOBS, grpc_method="QueueJob"
        )
        == 7
    )
    assert page.value(handled, grpc_method="GetJob", grpc_code="OK") > 0
    assert page.value("hodei_db_pool_connections", pool="api", state="idle") >= 1
    assert page.total("hodei_db_pool_requests_waiting") == 0

    check_with_promtool(page.text)
    mine = await scrape(worker_port)
    assert mine.value("hodei_worker_jobs_total", result="SUCCEEDED") == 4
    assert mine.value("hodei_worker_jobs_total", result="FAILED") == 2
    assert mine.value("hodei_worker_spawn_seconds_count") == 6
    assert mine.value("hodei_worker_log_bytes_total") == t["bytes_read"] > 0
    assert mine.value("hodei_worker_slots") == 2
    assert mine.value("hodei_worker_slots_busy") == 0
    assert mine.value("hodei_worker_reconnects_total") == 0
    check_with_promtool(mine.text)


def check_with_promtool(text: str) -> None:
    """The live exposition through the real `promtool check metrics` (when installed)."""
    tool = promtool()
    if tool is None:
        return  # tests/unit/metrics/test_contract.py skips with the reason
    done = subprocess.run(
        [tool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode()


async def test_a_worker_stream_counts_when_it_ends_with_its_code(
    start_server: StartServer, spawn_worker: SpawnWorker
) -> None:
    app = await start_server(metrics=FAST)
    worker = await spawn_worker(app.address)
    await worker.stop()
    page = await wait_scrape(
        app.metrics_port,
        "the worker stream counted",
        lambda p: p.total("hodei_grpc_server_handled_total", grpc_method="WorkerStream") == 1,
    )
    assert (
        page.value("hodei_grpc_server_handled_total", grpc_method="WorkerStream", grpc_code="OK")
        == 1
    )
    assert (
        page.value("hodei_grpc_server_handled_total", grpc_method="Register", grpc_code="OK") == 1
    )


async def test_a_refused_call_and_a_failed_stream_count_with_their_codes(
    start_server: StartServer, stubs_for: Any
) -> None:
    app = await start_server(metrics=FAST)
    stubs = stubs_for(app.address)
    missing = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await stubs.jobs.GetJob(jobs_pb2.GetJobRequest(job_id=missing))
    with pytest.raises(grpc.aio.AioRpcError) as stream:
        async for _ in stubs.logs.SubscribeLogs(logs_pb2.SubscribeLogsRequest(job_id=missing)):
            pass
    page = await scrape(app.metrics_port)
    handled = "hodei_grpc_server_handled_total"
    unary_code, stream_code = unary.value.code().name, stream.value.code().name
    assert unary_code != "OK" and stream_code != "OK"
    assert page.value(handled, grpc_method="GetJob", grpc_code=unary_code) == 1
    assert page.value(handled, grpc_method="SubscribeLogs", grpc_code=stream_code) == 1
    assert page.total(handled, grpc_method="SubscribeLogs") == 1


async def test_two_replicas_agree_on_the_database_and_split_the_counts(
    start_server: StartServer, stubs_for: Any, db_url: str
) -> None:
    # No worker: the jobs stay queued, so the queue gauges have something to show.
    one = await start_server(metrics=FAST)
    two = await start_server(metrics=FAST)
    for _ in range(3):
        await stubs_for(one.address).queue(["true"])
    for _ in range(2):
        await stubs_for(two.address).queue(["true"])
    t = await tables(db_url)
    assert t["queue"] == t["jobs"] == 5

    def queued(p: Scrape) -> bool:
        return p.value("hodei_queue_depth") == 5 and p.value("hodei_outbox_unpublished") == 0

    first = await wait_scrape(one.metrics_port, "replica one sees the 5 queued jobs", queued)
    second = await wait_scrape(two.metrics_port, "replica two sees the 5 queued jobs", queued)
    # Per process: each counted what it accepted; the sum is the total.
    assert first.value("hodei_jobs_submitted_total") == 3
    assert second.value("hodei_jobs_submitted_total") == 2
    # Database-wide: the same on both (max() of the two is the figure, not the sum).
    assert first.value("hodei_queue_oldest_wait_seconds") > 0
    assert second.value("hodei_queue_oldest_wait_seconds") > 0
    for name in ("hodei_worker_slots", "hodei_worker_slots_busy", "hodei_outbox_unpublished"):
        assert first.value(name) == second.value(name), name
    for state in ("READY", "BUSY", "LOST"):
        assert first.value("hodei_workers", state=state) == second.value(
            "hodei_workers", state=state
        )


async def test_a_worker_counts_its_reconnect_after_a_server_restart(
    start_server: StartServer, spawn_worker: SpawnWorker
) -> None:
    app = await start_server()
    worker_port = free_port()
    await spawn_worker(
        app.address, worker={"reconnect_max_backoff": 0.5}, metrics={"worker_port": worker_port}
    )
    assert (await scrape(worker_port)).value("hodei_worker_reconnects_total") == 0
    port = app.port
    await app.stop(grace=1.0)
    await start_server(server={"port": port})
    await wait_scrape(
        worker_port,
        "the worker's reconnect counted",
        lambda p: p.value("hodei_worker_reconnects_total") == 1,
    )
