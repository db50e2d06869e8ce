"""Hodei's side of the comparison: a real server process on a fresh database, the
jobs queued through QueueJobs, then K real `python -m hodei.worker` processes with S
slots (bench_platform_processes.Platform). The platform's defaults throughout, metrics
on as shipped (on free ports, so no fixed port is taken), plus any --hodei-env setting
(given to the server and the workers alike)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bench_platform import wait_final
from bench_platform_processes import Platform
from shared_pg import RunBroke, SharedPostgres, timed_drain

from hodei.client import HodeiClient
from hodei.domain.jobs import JobState

#: Both finish times are PostgreSQL's now() of the transaction that recorded the result.
SUCCEEDED_QUERY = """
SELECT count(*) FILTER (WHERE state = 'SUCCEEDED'),
       count(*) FILTER (WHERE state IN ('FAILED', 'TIMED_OUT', 'CANCELLED')),
       max(finished_at) FILTER (WHERE state = 'SUCCEEDED'),
       min(started_at)
FROM jobs
"""

#: QueueJobs takes at most 1000 jobs a call.
QUEUE_BATCH = 1000


def _platform(
    workdir: Path, url: str, workers: int, slots: int, hodei_env: dict[str, str]
) -> Platform:
    return Platform(
        workdir,
        workers,
        slots,
        server_env=dict(hodei_env),
        worker_env=dict(hodei_env),
        database_url=url,
    )


def throughput(
    pg: SharedPostgres,
    workdir: Path,
    workers: int,
    slots: int,
    jobs: int,
    hodei_env: dict[str, str],
) -> dict[str, Any]:
    with pg.fresh_database("peers_hodei") as url:
        platform = _platform(workdir, url, workers, slots, hodei_env)
        try:
            platform.start(workers=False)
            return asyncio.run(_throughput(pg, platform, url, jobs))
        finally:
            platform.stop()


async def _throughput(
    pg: SharedPostgres, platform: Platform, url: str, jobs: int
) -> dict[str, Any]:
    assert platform.server is not None
    async with HodeiClient(platform.address, deadline=30, token=platform.token) as client:
        await client.wait_ready(60)
        for start in range(0, jobs, QUEUE_BATCH):
            count = min(QUEUE_BATCH, jobs - start)
            await client.queue_jobs([{"command": ["true"]}] * count)
    server = platform.server
    return await timed_drain(
        pg,
        url,
        SUCCEEDED_QUERY,
        jobs,
        platform.spawn_workers,
        lambda: [server, *platform.worker_procs],
    )


def latency(
    pg: SharedPostgres,
    workdir: Path,
    workers: int,
    slots: int,
    jobs: int,
    warmup: int,
    gap: float,
    hodei_env: dict[str, str],
) -> list[float]:
    """Seconds from the QueueJob call to the job's started_at (its process spawned),
    one job at a time on an idle platform."""
    with pg.fresh_database("peers_hodei") as url:
        platform = _platform(workdir, url, workers, slots, hodei_env)
        try:
            platform.start()
            return asyncio.run(_latency(platform, jobs, warmup, gap))
        finally:
            platform.stop()


async def _latency(platform: Platform, jobs: int, warmup: int, gap: float) -> list[float]:
    samples: list[float] = []
    async with HodeiClient(platform.address, deadline=30, token=platform.token) as client:
        await platform.wait_ready(client)
        for n in range(warmup + jobs):
            t0 = time.time()
            job = await client.queue_job(["true"])
            done = await wait_final(client, job.id)
            if done.state != JobState.SUCCEEDED or done.started_at is None:
                raise RunBroke(f"Hodei job {job.id}: {done.state}")
            if n >= warmup:
                samples.append(done.started_at.timestamp() - t0)
            await asyncio.sleep(gap)
    return samples
