"""QueueJobs: many jobs in one call and one transaction, in order, all or none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import psycopg
import pytest

from hodei.api.v1 import jobs_pb2
from hodei.client import HodeiClient
from hodei.domain.jobs import JobState
from tests.integration.tokens import server_token
from tests.integration.wire import Stubs

StartServer = Callable[..., Any]


pytestmark = pytest.mark.integration


def _count(db_url: str, sql: str, *params: Any) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


def _request(*specs: jobs_pb2.JobSpec) -> jobs_pb2.QueueJobsRequest:
    return jobs_pb2.QueueJobsRequest(jobs=[jobs_pb2.QueueJobRequest(spec=s) for s in specs])


async def test_jobs_are_queued_in_order_with_their_events_and_run(
    start_server: StartServer, spawn_worker: Callable[..., Any], db_url: str
) -> None:
    app = await start_server(dispatcher={"poll_interval": 0.2})
    async with HodeiClient(app.address, token=server_token(app.address)) as client:
        jobs = await client.queue_jobs(
            [
                {
                    "command": ["sh", "-c", f"echo {i}"],
                    "name": f"bulk-{i}",
                    "labels": {"batch": "b1"},
                    "correlation_id": f"c{i}",
                }
                for i in range(5)
            ]
        )
        assert [j.name for j in jobs] == [f"bulk-{i}" for i in range(5)]
        assert all(j.state == JobState.PENDING for j in jobs)
        assert [j.correlation_id for j in jobs] == [f"c{i}" for i in range(5)]
        ids = [j.id for j in jobs]
        # Enqueued in request order (the dispatcher takes them FIFO).
        with psycopg.connect(db_url) as conn:
            queued = [
                str(r[0])
                for r in conn.execute(
                    "SELECT job_id FROM job_queue WHERE job_id = ANY(%s::uuid[]) "
                    "ORDER BY enqueued_at",
                    (ids,),
                )
            ]
        assert queued == ids
        for job_id in ids:
            assert (
                _count(
                    db_url,
                    "SELECT count(*) FROM domain_events WHERE aggregate_id = %s "
                    "AND event_type = 'JobCreated'",
                    job_id,
                )
                == 1
            )
            assert (
                _count(db_url, "SELECT count(*) FROM outbox_events WHERE aggregate_id = %s", job_id)
                == 1
            )
        await spawn_worker(app.address, slots=2)
        for i, job_id in enumerate(ids):
            lines = [
                x.line async for batch in client.subscribe_log_batches(job_id) for x in batch
            ]  # the stream ends when the job ends
            done = await client.get_job(job_id)
            assert done.state == JobState.SUCCEEDED and lines == [str(i)], (done, lines)


async def test_one_invalid_spec_queues_nothing_and_names_its_index(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server()
    stubs = stubs_for(app.address)
    before = _count(db_url, "SELECT count(*) FROM jobs")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.jobs.QueueJobs(
            _request(
                jobs_pb2.JobSpec(command=["true"]),
                jobs_pb2.JobSpec(command=["true"]),
                jobs_pb2.JobSpec(command=[]),
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (info.value.details() or "").startswith("jobs[2]: ")
    assert _count(db_url, "SELECT count(*) FROM jobs") == before


@pytest.mark.parametrize(
    ("count", "message"), [(0, "no jobs to queue"), (1001, "1001 jobs in one call; at most 1000")]
)
async def test_empty_and_oversized_calls_are_refused(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], count: int, message: str
) -> None:
    app = await start_server()
    stubs = stubs_for(app.address)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.jobs.QueueJobs(_request(*[jobs_pb2.JobSpec(command=["true"])] * count))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == message
