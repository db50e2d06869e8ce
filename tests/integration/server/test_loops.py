"""The background loops: dispatcher (NOTIFY + polling backstop, status row), outbox
relay, supervisor restarts."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from harness.waits import wait_for_async, wait_until_async
from hodei.api.v1 import common_pb2, jobs_pb2
from hodei.server.supervisor import Supervisor
from tests.integration.wire import FakeWorkerStream, Stubs

StartServer = Callable[..., Awaitable[Any]]


pytestmark = pytest.mark.integration


def status_row(db_url: str) -> dict[str, Any]:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute("SELECT * FROM server_status").fetchall()
    assert len(rows) == 1
    return rows[0]


async def test_job_inserted_without_notify_is_dispatched_by_polling(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(dispatcher={"poll_interval": 0.3})
    stubs = stubs_for(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    await asyncio.sleep(0.5)  # let the connect-triggered cycle pass: only polling remains
    job_id = uuid.uuid4()
    with psycopg.connect(db_url) as conn:
        # Bypass the enqueue transaction's NOTIFY: a lost notification.
        conn.execute("INSERT INTO jobs (id, command) VALUES (%s, ARRAY['true'])", (job_id,))
        conn.execute("INSERT INTO job_queue (job_id) VALUES (%s)", (job_id,))
    began = time.monotonic()
    run = await worker.receive_kind("run", seconds=5)
    waited = time.monotonic() - began
    assert run.ref.job_id == str(job_id) and run.ref.attempt == 1
    assert waited < 0.3 * 3 + 0.5, f"polling backstop took {waited:.2f}s"
    # The status row is written at most every 0.25 s while busy, then at the next idle cycle.

    async def read_status_row() -> dict[str, Any]:
        return status_row(db_url)

    row = await wait_for_async(
        "the status row to count the dispatched job",
        read_status_row,
        lambda r: r["dispatched_total"] == 1,
        timeout_s=2.0,
    )
    assert row["dispatcher_enabled"] and row["dispatched_total"] == 1
    assert row["dispatcher_last_cycle_at"] is not None and row["dispatcher_cycles"] >= 2
    await worker.close()


async def test_notify_wakes_the_dispatcher_before_the_poll(
    start_server: StartServer, stubs_for: Callable[[str], Stubs]
) -> None:
    app = await start_server(dispatcher={"poll_interval": 30})
    stubs = stubs_for(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    await asyncio.sleep(0.2)
    job = await stubs.queue(["true"])
    run = await worker.receive_kind("run", seconds=3)  # far less than the 30 s poll
    assert run.ref.job_id == job.id
    await worker.close()


async def test_dispatcher_disabled_leaves_jobs_pending_and_says_so(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="hodei")
    app = await start_server(dispatcher={"enabled": False, "poll_interval": 0.1})
    stubs = stubs_for(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    job = await stubs.queue(["true"])
    with pytest.raises(TimeoutError):
        await worker.receive_kind("run", seconds=0.8)
    assert (await stubs.wait_state(job.id, common_pb2.JOB_STATE_PENDING)).attempts == 0
    row = status_row(db_url)
    assert row["dispatcher_enabled"] is False and row["dispatcher_last_cycle_at"] is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("dispatcher DISABLED" in m for m in messages)
    assert not any(m.startswith("dispatcher started") for m in messages)
    assert any(m.startswith("outbox relay started") for m in messages)
    await worker.close()


async def test_outbox_rows_are_published_in_order_within_a_second(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(dispatcher={"enabled": False})
    stubs = stubs_for(app.address)
    listener = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
    await listener.execute("LISTEN hodei_outbox")
    job = await stubs.queue(["true"])
    await stubs.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id))
    received = []
    began = time.monotonic()
    async for note in listener.notifies(timeout=3.0, stop_after=2):
        received.append(json.loads(note.payload))
    elapsed = time.monotonic() - began
    await listener.close()
    assert [r["event"]["event_type"] for r in received] == ["JobCreated", "JobCancelled"]
    assert received[0]["outbox_id"] < received[1]["outbox_id"]
    assert received[0]["topic"] == "job.JobCreated"
    assert elapsed < 1.5
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"
        ).fetchone() == (0,)
    assert status_row(db_url)["outbox_last_publish_at"] is not None


async def test_an_outbox_row_too_big_for_notify_is_published_truncated(
    start_server: StartServer, db_url: str
) -> None:
    await start_server(dispatcher={"enabled": False})
    listener = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
    await listener.execute("LISTEN hodei_outbox")
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "WITH e AS (INSERT INTO domain_events (event_type, aggregate_type, aggregate_id, "
            "payload) VALUES ('JobCreated', 'job', %s, jsonb_build_object('big', repeat('x', "
            "9000))) RETURNING *) INSERT INTO outbox_events (event_id, topic, aggregate_id, "
            "payload) SELECT id, 'job.JobCreated', aggregate_id, payload FROM e RETURNING id",
            (str(uuid.uuid4()),),
        ).fetchone()
        conn.execute("NOTIFY hodei_outbox_wake")
    assert row is not None
    notes = [json.loads(n.payload) async for n in listener.notifies(timeout=3.0, stop_after=1)]
    await listener.close()
    assert notes == [{"outbox_id": row[0], "topic": "job.JobCreated", "truncated": True}]


async def test_outbox_relay_disabled_leaves_rows_unpublished(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(server={"outbox_relay_enabled": False})
    stubs = stubs_for(app.address)
    await stubs.queue(["true"])
    await asyncio.sleep(1.0)
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*), count(published_at) FROM outbox_events").fetchone()
    assert row == (1, 0)
    assert status_row(db_url)["outbox_relay_enabled"] is False


async def test_supervisor_restarts_a_crashed_loop_and_logs_it(caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="hodei")
    stop = asyncio.Event()
    runs = 0

    async def flaky(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError("boom")
        await stop.wait()

    supervisor = Supervisor(stop, initial_backoff=0.01)
    supervisor.start("flaky", flaky)
    await wait_until_async("the third run of the crashing loop", lambda: runs >= 3, 2.0, 0.02)
    assert runs == 3 and supervisor.alive("flaky") and supervisor.restarts["flaky"] == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and "flaky crashed" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    await supervisor.stop_all(grace=1)
    assert not supervisor.alive("flaky")


async def test_graceful_stop_marks_workers_disconnected_and_status_stopped(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server()
    stubs = stubs_for(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    await app.stop(grace=1)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT server_id FROM workers").fetchone() == (None,)
    assert status_row(db_url)["stopped_at"] is not None
    await worker.close()
