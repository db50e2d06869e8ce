"""Prefetch (issue 16): a worker holds jobs beyond its slots, acknowledged, and starts
them as slots free. Real server, real worker processes; each job appends to a ledger
file, so "ran once" is what the processes did, not what the tables say."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.waits import wait_for_async
from hodei.api.v1 import common_pb2, jobs_pb2
from tests.integration.conftest import SpawnWorker

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[Any]]
S = common_pb2


def ledger_job(ledger: Path, seconds: float) -> list[str]:
    return ["/bin/sh", "-c", f'echo "$HODEI_JOB_ID" >> {ledger}; sleep {seconds}']


def runs(ledger: Path) -> list[str]:
    return ledger.read_text().split() if ledger.exists() else []


async def states(db_url: str, ids: list[str]) -> dict[str, str]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        rows = await (
            await conn.execute(
                "SELECT id::text, state FROM jobs WHERE id = ANY(%s::uuid[])", (ids,)
            )
        ).fetchall()
    return {job_id: state for job_id, state in rows}


async def worker_prefetch(db_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        row = await (await conn.execute("SELECT max(prefetch) FROM workers")).fetchone()
    assert row is not None
    return int(row[0] or 0)


async def test_a_one_slot_worker_holds_two_more_jobs_and_runs_each_once(
    start_server: StartServer,
    spawn_worker: SpawnWorker,
    stubs_for: Any,
    db_url: str,
    tmp_path: Path,
) -> None:
    app = await start_server()
    await spawn_worker(app.address, slots=1, worker={"prefetch": 2})
    stubs = stubs_for(app.address)
    ledger = tmp_path / "ledger"
    jobs = [await stubs.queue(ledger_job(ledger, 0.7)) for _ in range(3)]
    ids = [job.id for job in jobs]
    # One runs; the other two are the worker's already (ASSIGNED), the queue is empty.
    held = await wait_for_async(
        "one job running and two held by the worker",
        lambda: states(db_url, ids),
        lambda s: sorted(s.values()) == ["ASSIGNED", "ASSIGNED", "RUNNING"],
        timeout_s=15,
    )
    assert len(held) == 3
    for job in jobs:
        await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=20)
    assert sorted(runs(ledger)) == sorted(ids)  # each ran, once
    assert runs(ledger) == ids  # in the order they were queued


async def test_a_stopping_worker_hands_its_prefetched_jobs_back_at_once(
    start_server: StartServer,
    spawn_worker: SpawnWorker,
    stubs_for: Any,
    db_url: str,
    tmp_path: Path,
) -> None:
    app = await start_server()
    worker = await spawn_worker(app.address, slots=1, worker={"prefetch": 2, "shutdown_grace": 20})
    stubs = stubs_for(app.address)
    ledger = tmp_path / "ledger"
    first = await stubs.queue(ledger_job(ledger, 2))
    waiting = [await stubs.queue(ledger_job(ledger, 0.1)) for _ in range(2)]
    await wait_for_async(
        "two jobs prefetched",
        lambda: states(db_url, [j.id for j in waiting]),
        lambda s: sorted(s.values()) == ["ASSIGNED", "ASSIGNED"],
        timeout_s=15,
    )
    worker.kill(signal.SIGTERM)  # graceful: the running job finishes, the rest go back
    back = await wait_for_async(
        "the prefetched jobs back in the queue",
        lambda: states(db_url, [j.id for j in waiting]),
        lambda s: sorted(s.values()) == ["PENDING", "PENDING"],
        timeout_s=5,
    )
    assert len(back) == 2
    done = await stubs.wait_state(first.id, S.JOB_STATE_SUCCEEDED, seconds=20)
    assert done.attempts == 1
    # Another worker runs them; nothing ran twice.
    await spawn_worker(app.address, slots=2, worker={"prefetch": 0})
    for job in waiting:
        await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=20)
    assert sorted(runs(ledger)) == sorted([first.id, *(j.id for j in waiting)])


async def test_a_prefetched_job_cancelled_never_starts(
    start_server: StartServer,
    spawn_worker: SpawnWorker,
    stubs_for: Any,
    db_url: str,
    tmp_path: Path,
) -> None:
    app = await start_server()
    await spawn_worker(app.address, slots=1, worker={"prefetch": 1})
    stubs = stubs_for(app.address)
    ledger = tmp_path / "ledger"
    running = await stubs.queue(ledger_job(ledger, 1.5))
    held = await stubs.queue(ledger_job(ledger, 0))
    await wait_for_async(
        "the second job prefetched",
        lambda: states(db_url, [held.id]),
        lambda s: s == {held.id: "ASSIGNED"},
        timeout_s=15,
    )
    await stubs.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=held.id, reason="not needed"))
    await stubs.wait_state(held.id, S.JOB_STATE_CANCELLED, seconds=15)
    await stubs.wait_state(running.id, S.JOB_STATE_SUCCEEDED, seconds=15)
    await asyncio.sleep(0.3)  # a start would have been written by now
    assert runs(ledger) == [running.id]


async def test_the_default_prefetch_follows_the_run_times(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, db_url: str
) -> None:
    """Adaptive by default: short jobs raise what the worker holds (the server hears
    it and deals by it); jobs of half a second bring it to none."""
    app = await start_server()
    await spawn_worker(app.address, slots=2)
    stubs = stubs_for(app.address)
    assert await worker_prefetch(db_url) == 2  # where it starts: its slots
    quick = [await stubs.queue(["true"]) for _ in range(30)]
    for job in quick:
        await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=20)
    assert await wait_for_async(
        "the prefetch to rise", lambda: worker_prefetch(db_url), lambda n: n > 2, timeout_s=10
    )
    slow = [await stubs.queue(["sleep", "0.5"]) for _ in range(6)]
    for job in slow:
        await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=30)
    await wait_for_async(
        "the prefetch to fall to none",
        lambda: worker_prefetch(db_url),
        lambda n: n == 0,
        timeout_s=10,
    )
