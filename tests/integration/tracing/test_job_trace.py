"""One trace per job, in one process: a real server (ServerApp) and real worker agents
(WorkerService, running real job processes) in the test's event loop, a real
PostgreSQL, the Python client; their spans go to the SDK's in-memory exporter.

The span tree of a job (docs/observability.md#traces):
submit (client) -> QueueJob (server) -> enqueue -> dispatch -> RunJob (worker)
-> spawn, and RunJob -> result (the server records the attempt's end)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import NonRecordingSpan, SpanContext, StatusCode, TraceFlags

from harness.waits import wait_for_async, wait_until_async
from hodei.client import HodeiClient
from hodei.domain.jobs import JobState
from hodei.server.app import ServerApp
from hodei.settings import Settings
from hodei.worker.service import WorkerService
from tests.integration.tokens import server_token
from tests.integration.tracing.spans import (
    finished_spans,
    in_memory_spans,
    named,
    parent_id,
    span_id,
    trace_id,
)

pytestmark = pytest.mark.integration

#: The server and workers of these tests trace (the entry points, which would install
#: an exporter for them, are not run: their spans go to the in-memory one).
TRACING = {"exporter": "otlp"}

StartWorker = Callable[..., Awaitable[WorkerService]]


@pytest.fixture
async def start_worker(
    test_settings: Callable[..., Settings],
) -> AsyncIterator[StartWorker]:
    """`service = await start_worker(app, **overrides)`: a worker agent in this event
    loop, its stream open on `app`; stopped (gracefully) at teardown."""
    running: list[tuple[WorkerService, asyncio.Task[None]]] = []

    async def start(app: ServerApp, **overrides: Any) -> WorkerService:
        settings = test_settings(
            server={"address": app.address},
            client={"token": server_token(app.address, "worker")},
            **overrides,
        )
        service = WorkerService(settings, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        running.append((service, asyncio.create_task(service.run())))
        assert app.services is not None
        registry = app.services.registry

        def open_here() -> bool:
            worker_id = service.agent.worker_id
            return bool(worker_id) and uuid.UUID(worker_id) in registry.worker_ids()

        await wait_until_async("the worker's stream to open", open_here, 15)
        return service

    yield start
    for service, task in running:
        if not task.done():
            service.request_shutdown()
    await asyncio.gather(*(task for _, task in running), return_exceptions=True)


async def spans_until(names: dict[str, int], seconds: float = 20.0) -> tuple[ReadableSpan, ...]:
    """The finished spans once there are at least this many of each name."""

    async def finished() -> tuple[ReadableSpan, ...]:
        return finished_spans()

    return await wait_for_async(
        f"spans {names}",
        finished,
        lambda spans: all(len(named(spans, n)) >= k for n, k in names.items()),
        seconds,
        describe=lambda spans: sorted(s.name for s in spans),
    )


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = named(spans, name)
    assert len(found) == 1, f"{len(found)} {name!r} spans: {[s.name for s in spans]}"
    return found[0]


async def job_row(app: ServerApp, job_id: str) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(app.database_url) as conn:
        cur = await conn.execute(
            "SELECT state, attempts, worker_id::text, trace_context FROM jobs WHERE id = %s",
            (job_id,),
        )
        row = await cur.fetchone()
    assert row is not None
    return {"state": row[0], "attempts": row[1], "worker_id": row[2], "trace_context": row[3]}


@pytest.mark.parametrize("eager", [True, False], ids=["eager-dispatch", "dispatcher-loop"])
async def test_one_job_is_one_trace_in_order_with_the_right_parents(
    start_server: Callable[..., Awaitable[ServerApp]], start_worker: StartWorker, eager: bool
) -> None:
    in_memory_spans()
    app = await start_server(tracing=TRACING, dispatcher={"eager": eager})
    await start_worker(app, tracing=TRACING)
    async with HodeiClient(app.address, token=server_token(app.address), tracing=True) as client:
        job = await client.queue_job(["sh", "-c", "echo traced"], correlation_id="corr-1")
    spans = await spans_until({"result": 1})

    assert {trace_id(s) for s in spans} == {trace_id(spans[0])}, "more than one trace"
    chain = ["submit", "QueueJob", "enqueue", "dispatch", "RunJob", "spawn", "result"]
    by_name = {name: one(spans, name if name != "QueueJob" else _QUEUE_JOB) for name in chain}
    assert len(spans) == len(chain), sorted(s.name for s in spans)
    starts = [by_name[name].start_time or 0 for name in chain]
    assert starts == sorted(starts), f"spans out of order: {dict(zip(chain, starts, strict=True))}"
    parents = {
        "submit": None,
        "QueueJob": "submit",
        "enqueue": "QueueJob",
        "dispatch": "enqueue",
        "RunJob": "dispatch",
        "spawn": "RunJob",
        "result": "RunJob",
    }
    for name, parent in parents.items():
        expected = None if parent is None else span_id(by_name[parent])
        assert parent_id(by_name[name]) == expected, f"{name}'s parent is not {parent}"

    row = await job_row(app, job.id)
    assert row["state"] == "SUCCEEDED"
    for name in ("submit", "enqueue", "dispatch", "RunJob", "spawn", "result"):
        assert attrs(by_name[name])["hodei.job_id"] == job.id, name
        assert attrs(by_name[name])["hodei.correlation_id"] == "corr-1", name
    for name in ("dispatch", "RunJob", "spawn", "result"):
        assert attrs(by_name[name])["hodei.attempt"] == 1, name
        assert attrs(by_name[name])["hodei.worker_id"] == row["worker_id"], name
    assert attrs(by_name["result"])["hodei.state"] == "SUCCEEDED"
    assert all(s.status.status_code != StatusCode.ERROR for s in spans)
    # The row keeps the enqueue span's context: a later dispatch anywhere continues it.
    enqueue = by_name["enqueue"]
    assert row["trace_context"].startswith(f"00-{trace_id(enqueue):032x}-{span_id(enqueue):016x}-")


_QUEUE_JOB = "hodei.api.v1.JobExecutionService/QueueJob"


async def test_another_replica_continues_the_trace_from_the_jobs_row(
    start_server: Callable[..., Awaitable[ServerApp]], start_worker: StartWorker
) -> None:
    in_memory_spans()
    # A takes the submission but dispatches nothing; B, on the same database, has the
    # worker: all B knows of the job's trace is what A stored in its row.
    queued_on = await start_server(tracing=TRACING, dispatcher={"enabled": False})
    dispatched_on = await start_server(tracing=TRACING)
    await start_worker(dispatched_on, tracing=TRACING)
    token = server_token(queued_on.address)
    async with HodeiClient(queued_on.address, token=token, tracing=True) as client:
        job = await client.queue_job(["sh", "-c", "echo elsewhere"])
    spans = await spans_until({"result": 1})

    assert {trace_id(s) for s in spans} == {trace_id(spans[0])}, "more than one trace"
    enqueue, dispatch = one(spans, "enqueue"), one(spans, "dispatch")
    assert parent_id(dispatch) == span_id(enqueue)
    assert parent_id(one(spans, "RunJob")) == span_id(dispatch)
    assert attrs(dispatch)["hodei.job_id"] == job.id
    row = await job_row(dispatched_on, job.id)
    assert row["state"] == "SUCCEEDED"
    assert attrs(dispatch)["hodei.worker_id"] == row["worker_id"]


async def test_a_retried_job_stays_one_trace_with_a_runjob_span_per_attempt(
    start_server: Callable[..., Awaitable[ServerApp]], start_worker: StartWorker
) -> None:
    in_memory_spans()
    app = await start_server(tracing=TRACING)
    first = await start_worker(app, tracing=TRACING, worker={"shutdown_grace": 0.2})
    # Attempt 1 outlives its worker's shutdown grace and is handed back; attempt 2 ends.
    script = 'if [ "$HODEI_JOB_ATTEMPT" = 1 ]; then sleep 30; fi; echo done'
    async with HodeiClient(app.address, token=server_token(app.address), tracing=True) as client:
        job = await client.queue_job(["sh", "-c", script], max_attempts=3)
        await wait_for_async(
            "attempt 1 to run",
            lambda: client.get_job(job.id),
            lambda j: j.state == JobState.RUNNING,
            15,
        )
        first.request_shutdown()
        await wait_for_async(
            "attempt 1 to be handed back",
            lambda: client.get_job(job.id),
            lambda j: j.state == JobState.PENDING,
            15,
        )
        await start_worker(app, tracing=TRACING)
        done = await wait_for_async(
            "attempt 2 to succeed",
            lambda: client.get_job(job.id),
            lambda j: j.state == JobState.SUCCEEDED,
            20,
        )
    assert done.attempts == 2
    spans = await spans_until({"RunJob": 2, "result": 1})

    assert {trace_id(s) for s in spans} == {trace_id(spans[0])}, "more than one trace"
    enqueue = one(spans, "enqueue")
    dispatches, runs = named(spans, "dispatch"), named(spans, "RunJob")
    assert [attrs(s)["hodei.attempt"] for s in dispatches] == [1, 2]
    assert [attrs(s)["hodei.attempt"] for s in runs] == [1, 2]
    assert all(parent_id(d) == span_id(enqueue) for d in dispatches)
    assert [parent_id(r) for r in runs] == [span_id(d) for d in dispatches]
    # The handed-back attempt is an error on its span; the second one is not.
    assert runs[0].status.status_code == StatusCode.ERROR
    assert runs[1].status.status_code != StatusCode.ERROR
    result = one(spans, "result")
    assert parent_id(result) == span_id(runs[1])
    assert attrs(result)["hodei.attempt"] == 2


async def test_tracing_off_makes_no_span_and_stores_an_empty_context(
    start_server: Callable[..., Awaitable[ServerApp]], start_worker: StartWorker
) -> None:
    exporter = in_memory_spans()
    app = await start_server()
    await start_worker(app)
    async with HodeiClient(app.address, token=server_token(app.address)) as client:
        job = await client.queue_job(["sh", "-c", "echo untraced"])
        await wait_for_async(
            "the job to succeed",
            lambda: client.get_job(job.id),
            lambda j: j.state == JobState.SUCCEEDED,
            15,
        )
    assert exporter.get_finished_spans() == ()
    assert (await job_row(app, job.id))["trace_context"] == ""


async def test_a_trace_sampled_out_by_the_caller_records_nothing_anywhere(
    start_server: Callable[..., Awaitable[ServerApp]], start_worker: StartWorker
) -> None:
    """The default sampler follows the parent: the caller's "not sampled" flag travels
    with the context (metadata, row, RunJob, JobResult) and every later span obeys."""
    exporter = in_memory_spans()
    app = await start_server(tracing=TRACING)
    await start_worker(app, tracing=TRACING)
    caller = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(0))
    async with HodeiClient(app.address, token=server_token(app.address), tracing=True) as client:
        with trace.use_span(NonRecordingSpan(caller)):
            job = await client.queue_job(["sh", "-c", "echo sampled out"])
        await wait_for_async(
            "the job to succeed",
            lambda: client.get_job(job.id),
            lambda j: j.state == JobState.SUCCEEDED,
            15,
        )
    assert exporter.get_finished_spans() == ()
    stored = (await job_row(app, job.id))["trace_context"]
    assert stored.startswith(f"00-{0x1234:032x}-") and stored.endswith("-00"), stored
