"""The server's retention loop: it prunes on its own, one server at a time, and what
never-connected registrations leave behind goes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from harness.waits import stays, wait_for_async, wait_until_async
from hodei.api.v1 import workers_pb2
from hodei.db import retention
from tests.integration.wire import Stubs

StartServer = Callable[..., Awaitable[Any]]

pytestmark = pytest.mark.integration

#: Short enough for a test, long enough that a round does not overlap the next.
FAST = {"interval": 0.2, "batch_pause": 0.0}


def count(db_url: str, sql: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def add_old_jobs(db_url: str, n: int) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO jobs (id, command, state, finished_at) SELECT gen_random_uuid(), "
            "'{true}', 'SUCCEEDED', now() - interval '30 days' FROM generate_series(1, %s)",
            (n,),
        )


async def wait_count(db_url: str, sql: str, expected: int, seconds: float = 15.0) -> None:
    async def probe() -> int:
        return await asyncio.to_thread(count, db_url, sql)

    await wait_for_async(sql, probe, lambda n: n == expected, seconds)


async def test_the_loop_prunes_on_its_own_and_logs_the_counts(
    start_server: StartServer, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hodei.server.retention")
    add_old_jobs(db_url, 30)
    with psycopg.connect(db_url) as conn:
        # Unfinished, a year old: never pruned.
        conn.execute(
            "INSERT INTO jobs (id, command, state, created_at) VALUES "
            "(%s, '{true}', 'RUNNING', now() - interval '1 year')",
            (uuid.uuid4(),),
        )

    app = await start_server(retention={**FAST, "batch_size": 7})

    await wait_count(db_url, "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'", 0)
    assert count(db_url, "SELECT count(*) FROM jobs") == 1
    # The round adds its count once all its kinds are done, after the jobs' last batch.
    await wait_until_async(
        "the retention round to count its deletions",
        lambda: app.retention is not None and app.retention.deleted_total == 30,
        5,
    )
    rounds = [r.getMessage() for r in caplog.records if "retention round deleted" in r.message]
    # One INFO line for the round that deleted; the empty rounds say nothing.
    assert rounds == ["retention round deleted jobs=30"], rounds


async def test_a_server_without_the_retention_lock_skips_the_round(
    start_server: StartServer, db_url: str
) -> None:
    add_old_jobs(db_url, 5)
    other = await retention.connect(db_url)  # another server, pruning
    async with other:
        assert await retention.try_lock(other)
        app = await start_server(retention=FAST)

        async def skipped() -> int:
            return int(app.retention.skipped)

        await wait_for_async("two skipped rounds", skipped, lambda n: n >= 2, 10.0)
        assert count(db_url, "SELECT count(*) FROM jobs") == 5
    # The other pruner's connection is closed: its lock went with it.
    await wait_count(db_url, "SELECT count(*) FROM jobs", 0)


async def test_the_loop_can_be_disabled(start_server: StartServer, db_url: str) -> None:
    add_old_jobs(db_url, 3)
    app = await start_server(retention={**FAST, "enabled": False})
    assert app.retention is None and not app.supervisor.alive("retention")
    # Three intervals: a loop would have pruned by now.
    await asyncio.to_thread(
        stays,
        "the old jobs",
        lambda: count(db_url, "SELECT count(*) FROM jobs"),
        lambda n: n == 3,
        0.6,
    )


async def test_registrations_that_never_open_a_stream_leave_no_rows(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    # The measurement: 2,000 concurrent Register calls used to leave 2,000 worker
    # rows (and their events) behind for good.
    app = await start_server(retention={**FAST, "interval": 0.5, "registrations_age": 2.0})
    stubs = stubs_for(app.address)
    request = workers_pb2.RegisterRequest(name="never", hostname="h", pid=1, slots=1)
    for _ in range(10):
        await asyncio.gather(*(stubs.workers.Register(request, timeout=30) for _ in range(200)))
    assert count(db_url, "SELECT count(*) FROM workers") > 0

    await wait_count(db_url, "SELECT count(*) FROM workers", 0, seconds=60)
    worker_events = "SELECT count(*) FROM domain_events WHERE aggregate_type = 'worker'"
    assert count(db_url, worker_events) == 0
    # The round adds its count once all its kinds are done, after the table is empty.
    await wait_until_async(
        "the retention rounds to count 2,000 deletions",
        lambda: app.retention is not None and app.retention.deleted_total >= 2000,
        10,
    )
