"""What the parts of bench_scale.py share: a platform per part, bulk submission, the
database reads that measure progress (cheap ones: they run while the jobs do), CPU
deltas and the server's dispatch log lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from bench_platform_processes import CpuMeter, Platform

from hodei.client import HodeiClient

#: QueueJobs takes at most 1,000 jobs a call.
QUEUE_JOBS_MAX = 1000


@contextlib.contextmanager
def platform(
    workers: int, slots: int, keep: bool, server_env: dict[str, str] | None = None
) -> Iterator[Platform]:
    """A fresh platform (embedded PostgreSQL in a new data dir, a server logging JSON
    lines, `workers` real workers), stopped and removed on the way out."""
    workdir = Path(tempfile.mkdtemp(prefix="hodei-scale-"))
    plat = Platform(
        workdir, workers, slots, server_args=["--log-format", "json"], server_env=server_env or {}
    )
    try:
        plat.start()
        yield plat
    finally:
        plat.stop()
        if keep:
            print(f"    work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def queue_bulk(
    client: HodeiClient,
    count: int,
    command: list[str],
    label: str,
    chunk: int = QUEUE_JOBS_MAX,
    callers: int = 4,
) -> tuple[float, list[str]]:
    """Queue `count` jobs with QueueJobs calls of `chunk` from `callers` concurrent
    callers; returns the seconds it took and the job ids."""
    left = [count]
    ids: list[str] = []

    async def caller() -> None:
        while left[0] > 0:
            take = min(chunk, left[0])
            left[0] -= take
            jobs = await client.queue_jobs(
                [{"command": command, "labels": {"bench": label}}] * take
            )
            ids.extend(job.id for job in jobs)

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return time.perf_counter() - began, ids


class Db:
    """One autocommit connection to the platform's database, for the bench's reads."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, plat: Platform) -> Db:
        return cls(await psycopg.AsyncConnection.connect(plat.pg.get_uri("hodei"), autocommit=True))

    async def close(self) -> None:
        await self.conn.close()

    async def value(self, sql: str, params: Any = None) -> Any:
        row = await (await self.conn.execute(sql, params)).fetchone()
        return row[0] if row else None

    async def row(self, sql: str, params: Any = None) -> tuple[Any, ...]:
        row = await (await self.conn.execute(sql, params)).fetchone()
        assert row is not None
        return tuple(row)

    async def finished(self) -> int:
        # jobs_finished_at_idx: cheap enough to poll while 100,000 jobs wait.
        return int(await self.value("SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL"))

    async def nth_finished_at(self, n: int) -> float:
        """Unix time of the n-th completion (1-based), in finishing order."""
        value = await self.value(
            "SELECT extract(epoch FROM finished_at)::float8 FROM jobs "
            "WHERE finished_at IS NOT NULL ORDER BY finished_at OFFSET %s LIMIT 1",
            (n - 1,),
        )
        assert value is not None, f"fewer than {n} jobs finished"
        return float(value)

    async def first_assigned_at(self) -> float:
        return float(
            await self.value("SELECT extract(epoch FROM min(assigned_at))::float8 FROM jobs")
        )


def cpu_delta(meter: CpuMeter, end: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds each part of the platform used since the meter began."""
    end = end or meter.sample()
    return {name: end[name] - meter.start[name] for name in meter.start}


@dataclass
class Cycle:
    ts: float
    jobs: int
    ms: float


def dispatch_cycles(server_log: Path) -> list[Cycle]:
    """The dispatcher's "dispatch cycle" lines (hodei.server.dispatcher): one per cycle
    that assigned jobs, with its claim + assign statement(s) and RunJob pushes in
    `duration_ms` (the push only queues messages on streams: the statements dominate)."""
    cycles = []
    with server_log.open(encoding="utf-8") as handle:
        for line in handle:
            if '"dispatch cycle' not in line:
                continue
            record = json.loads(line)
            cycles.append(Cycle(record["ts"], int(record["count"]), float(record["duration_ms"])))
    return cycles


def cycle_stats(cycles: list[Cycle], begin: float, end: float) -> dict[str, float]:
    """Median and p95 of the cycles logged in [begin, end], and the jobs per cycle."""
    inside = [c for c in cycles if begin <= c.ts <= end]
    times = [c.ms for c in inside]
    jobs = sum(c.jobs for c in inside)
    return {
        "cycles": len(inside),
        "ms_p50": median(times),
        "ms_p95": pct(times, 95),
        "jobs_per_cycle": median([float(c.jobs) for c in inside]),
        "ms_per_job": sum(times) / jobs if jobs else float("nan"),
    }
