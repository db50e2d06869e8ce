"""Idempotent submission: QueueJob and QueueJobs with an idempotency key, against a
real server and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import psycopg
import pytest

from hodei.api.v1 import common_pb2, jobs_pb2
from hodei.db import retention
from hodei.settings import RetentionSettings
from tests.integration.wire import FakeWorkerStream, Stubs

StartServer = Callable[..., Any]


pytestmark = pytest.mark.integration


def _scalar(db_url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def _execute(db_url: str, sql: str, *params: Any) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(sql, params)


def _counts(db_url: str) -> tuple[int, int, int]:
    """(jobs, JobCreated events, outbox rows of job events)."""
    return (
        _scalar(db_url, "SELECT count(*) FROM jobs"),
        _scalar(db_url, "SELECT count(*) FROM domain_events WHERE event_type = 'JobCreated'"),
        _scalar(db_url, "SELECT count(*) FROM outbox_events WHERE topic LIKE 'job.%%'"),
    )


async def _queue(
    stubs: Stubs, command: list[str], key: str, correlation_id: str = "", **spec: Any
) -> jobs_pb2.Job:
    request = jobs_pb2.QueueJobRequest(
        spec=jobs_pb2.JobSpec(command=command, **spec),
        correlation_id=correlation_id,
        idempotency_key=key,
    )
    return (await stubs.jobs.QueueJob(request, timeout=10)).job


async def _queue_many(stubs: Stubs, commands: list[list[str]], key: str) -> list[jobs_pb2.Job]:
    request = jobs_pb2.QueueJobsRequest(
        jobs=[jobs_pb2.QueueJobRequest(spec=jobs_pb2.JobSpec(command=c)) for c in commands],
        idempotency_key=key,
    )
    return list((await stubs.jobs.QueueJobs(request, timeout=10)).jobs)


async def test_the_same_key_and_spec_answer_the_first_job_and_write_nothing(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server()
    stubs = stubs_for(app.address)
    env = {"A": "1", "B": "2"}
    first = await _queue(stubs, ["echo", "hi"], "k-1", correlation_id="c1", env=env)
    # A retry may carry another correlation id, and its maps in another order.
    again = await _queue(
        stubs, ["echo", "hi"], "k-1", correlation_id="c2", env={"B": "2", "A": "1"}
    )
    assert again.id == first.id and again.correlation_id == "c1"
    assert _counts(db_url) == (1, 1, 1)
    stored = _scalar(db_url, "SELECT job_ids::text[] FROM submission_keys WHERE key = 'k-1'")
    assert stored == [first.id]
    # Another key is another submission.
    other = await _queue(stubs, ["echo", "hi"], "k-2")
    assert other.id != first.id
    assert _counts(db_url) == (2, 2, 2)


async def test_the_same_key_and_batch_answer_the_same_jobs_in_order(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server()
    stubs = stubs_for(app.address)
    commands = [["echo", str(i)] for i in range(3)]
    first = await _queue_many(stubs, commands, "batch-1")
    again = await _queue_many(stubs, commands, "batch-1")
    assert [j.id for j in again] == [j.id for j in first]
    assert [list(j.spec.command) for j in again] == commands
    assert _counts(db_url) == (3, 3, 3)
    assert _scalar(db_url, "SELECT count(*) FROM job_queue") == 3


@pytest.mark.parametrize("batch", [False, True])
async def test_the_same_key_with_another_spec_is_already_exists(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str, batch: bool
) -> None:
    app = await start_server()
    stubs = stubs_for(app.address)
    if batch:
        await _queue_many(stubs, [["echo", "a"], ["echo", "b"]], "same")
        retry = _queue_many(stubs, [["echo", "b"], ["echo", "a"]], "same")  # another order
        what = "a different list of job specs"
    else:
        await _queue(stubs, ["echo", "a"], "same", timeout_seconds=5)
        retry = _queue(stubs, ["echo", "a"], "same", timeout_seconds=6)
        what = "a different job spec"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await retry
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert caught.value.details() == (
        f"idempotency key 'same' was used for {what} within the last 24h"
    )
    assert _counts(db_url)[0] == (2 if batch else 1)


async def test_a_key_of_a_queue_job_is_not_a_batch_of_one(
    start_server: StartServer, stubs_for: Callable[[str], Stubs]
) -> None:
    app = await start_server()
    stubs = stubs_for(app.address)
    await _queue(stubs, ["true"], "one-call")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _queue_many(stubs, [["true"]], "one-call")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_concurrent_calls_with_one_key_make_one_job(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server()
    stubs = stubs_for(app.address)
    jobs = await asyncio.gather(*(_queue(stubs, ["true"], "race") for _ in range(10)))
    assert len({j.id for j in jobs}) == 1
    batches = await asyncio.gather(
        *(_queue_many(stubs, [["true"], ["false"]], "race-batch") for _ in range(10))
    )
    assert len({tuple(j.id for j in b) for b in batches}) == 1
    assert _counts(db_url) == (3, 3, 3)


async def test_a_replay_sends_no_second_run_job_under_eager_dispatch(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(dispatcher={"poll_interval": 30})
    stubs = stubs_for(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs, slots=2)
    first = await _queue(stubs, ["true"], "eager")
    assert first.state == common_pb2.JOB_STATE_ASSIGNED
    assert (await worker.receive_kind("run", seconds=2)).ref.job_id == first.id
    again = await _queue(stubs, ["true"], "eager")
    assert again.id == first.id and again.state == common_pb2.JOB_STATE_ASSIGNED
    # The next RunJob the worker gets is the next job's: the replay pushed none.
    other = await _queue(stubs, ["true"], "")
    assert (await worker.receive_kind("run", seconds=2)).ref.job_id == other.id
    assert _scalar(db_url, "SELECT running_jobs FROM workers WHERE id = %s", worker.worker_id) == 2
    await worker.close()


async def test_a_key_older_than_the_window_is_unknown(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(submission={"idempotency_window": 90})
    stubs = stubs_for(app.address)
    first = await _queue(stubs, ["true"], "old")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _queue(stubs, ["false"], "old")
    assert caught.value.details().endswith("within the last 90s")
    _execute(
        db_url,
        "UPDATE submission_keys SET created_at = now() - interval '91 seconds' WHERE key = 'old'",
    )
    # Even with another spec: the key is free again, and now names the new job.
    renewed = await _queue(stubs, ["false"], "old")
    assert renewed.id != first.id
    stored = _scalar(db_url, "SELECT job_ids::text[] FROM submission_keys WHERE key = 'old'")
    assert stored == [renewed.id]
    assert (await _queue(stubs, ["false"], "old")).id == renewed.id


async def test_a_key_whose_jobs_were_pruned_is_unknown(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server()
    stubs = stubs_for(app.address)
    first = await _queue(stubs, ["true"], "pruned")
    _execute(db_url, "DELETE FROM jobs WHERE id = %s", first.id)
    renewed = await _queue(stubs, ["true"], "pruned")
    assert renewed.id != first.id
    assert (await _queue(stubs, ["true"], "pruned")).id == renewed.id


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("x" * 129, "idempotency key is 129 characters long; at most 128"),
        ("two words", "idempotency key has the character ' '"),
    ],
)
async def test_a_bad_key_is_invalid_argument(
    start_server: StartServer,
    stubs_for: Callable[[str], Stubs],
    db_url: str,
    key: str,
    message: str,
) -> None:
    app = await start_server()
    stubs = stubs_for(app.address)
    for call in (_queue(stubs, ["true"], key), _queue_many(stubs, [["true"]], key)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in caught.value.details() and "\n" not in caught.value.details()
    assert _counts(db_url) == (0, 0, 0)


async def test_retention_deletes_keys_past_the_window_in_batches(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO submission_keys (key, request_hash, job_ids, created_at) "
            "SELECT 'k' || i, 'h', ARRAY[gen_random_uuid()], now() - make_interval(mins => i) "
            "FROM generate_series(1, 5) AS i"
        )
    # A window of 150 s: k3, k4 and k5 are past it; batches of 2.
    ages = {"submission_keys": 150.0}
    batches = RetentionSettings(batch_size=2, batch_pause=0.0)
    pruner = await retention.connect(db_url)
    try:
        counted = await retention.prune(pruner, batches, dry_run=True, ages=ages)
        assert counted.counts()["submission_keys"] == 3
        report = await retention.prune(pruner, batches, ages=ages)
    finally:
        await pruner.close()
    (keys,) = [r for r in report.kinds if r.kind.name == "submission_keys"]
    assert (keys.deleted, keys.batches) == (3, 2)
    with psycopg.connect(db_url) as conn:
        left = conn.execute("SELECT key FROM submission_keys ORDER BY key").fetchall()
    assert [r[0] for r in left] == ["k1", "k2"]
