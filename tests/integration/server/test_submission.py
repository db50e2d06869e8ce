"""Eager dispatch (hodei.server.submission): a job submitted while this server has a
READY worker with a free slot and nothing waits in the queue is assigned by the
statement that creates it, and its RunJob is sent before the QueueJob answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from hodei.api.v1 import common_pb2
from tests.integration.wire import FakeWorkerStream, Stubs

StartServer = Callable[..., Any]


pytestmark = pytest.mark.integration


def _events(db_url: str, aggregate_id: str) -> list[tuple[str, dict[str, Any]]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT event_type, payload FROM domain_events WHERE aggregate_id = %s ORDER BY id",
            (aggregate_id,),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _one(db_url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


async def test_a_job_is_assigned_by_the_statement_that_creates_it(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(dispatcher={"poll_interval": 30})  # only eager dispatch can be in time
    stubs = stubs_for(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs, slots=1)

    job = await stubs.queue(["true"])
    assert job.state == common_pb2.JOB_STATE_ASSIGNED and job.attempts == 1
    assert job.worker_id == worker.worker_id
    run = await worker.receive_kind("run", seconds=2)
    assert (run.ref.job_id, run.ref.attempt) == (job.id, 1)

    events = _events(db_url, job.id)
    assert [e for e, _ in events] == ["JobCreated", "JobAssigned"]
    assert events[0][1]["state"] == "PENDING" and events[1][1]["worker_id"] == worker.worker_id
    assert _one(db_url, "SELECT count(*) FROM job_queue WHERE job_id = %s", job.id) == 0
    assert (
        _one(
            db_url,
            "SELECT count(*) FROM outbox_events o JOIN domain_events d "
            "ON d.id = o.event_id WHERE d.aggregate_id = %s",
            job.id,
        )
        == 2
    )
    # The worker's only slot is taken: it went BUSY, with its event.
    state, running, current = _one(
        db_url,
        "SELECT state, running_jobs, current_job_id::text FROM workers WHERE id = %s",
        worker.worker_id,
    )
    assert (state, running, current) == ("BUSY", 1, job.id)
    assert [e for e, _ in _events(db_url, worker.worker_id)][-1] == "WorkerBusy"

    # No free slot now: the next job is queued as usual.
    second = await stubs.queue(["true"])
    assert second.state == common_pb2.JOB_STATE_PENDING
    assert _one(db_url, "SELECT count(*) FROM job_queue WHERE job_id = %s", second.id) == 1
    await worker.close()


async def test_a_waiting_job_goes_first(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(dispatcher={"poll_interval": 30})
    stubs = stubs_for(app.address)
    waiting = await stubs.queue(["true"])  # no worker yet: queued
    assert waiting.state == common_pb2.JOB_STATE_PENDING
    with psycopg.connect(db_url) as conn, conn.transaction():
        # Hold the waiting job's queue row so the dispatcher cannot take it meanwhile.
        conn.execute("SELECT 1 FROM job_queue WHERE job_id = %s FOR UPDATE", (waiting.id,))
        worker, _ = await FakeWorkerStream.connect(stubs, slots=4)
        newer = await stubs.queue(["true"])
        assert newer.state == common_pb2.JOB_STATE_PENDING, "jumped the queue"
    await worker.close()


async def test_off_without_the_setting(
    start_server: StartServer, stubs_for: Callable[[str], Stubs]
) -> None:
    app = await start_server(dispatcher={"eager": False, "poll_interval": 0.2})
    stubs = stubs_for(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs, slots=2)
    job = await stubs.queue(["true"])
    assert job.state == common_pb2.JOB_STATE_PENDING
    run = await worker.receive_kind("run")  # the dispatcher loop sends it
    assert run.ref.job_id == job.id
    await worker.close()
