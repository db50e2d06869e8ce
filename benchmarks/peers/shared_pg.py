"""The one PostgreSQL server both queues use in a run, a fresh database per side and
row on it, and the wait for a queue's last job (both sides are timed the same way:
PostgreSQL's own now() of the transaction that recorded the last success)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from bench_platform_processes import postgres_pids

from harness.processes import cpu_seconds
from hodei.db.databases import create_database, drop_database

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class SharedPostgres:
    """The embedded PostgreSQL started for the run (pgserver, the platform's default),
    or another server named by its URL (a database on it to connect to for CREATE
    DATABASE, e.g. postgresql://postgres@127.0.0.1:5432/postgres)."""

    admin_url: str
    #: The embedded server's data dir: its processes' CPU can be read; None for
    #: another server (its processes may not be ours, or not on this machine).
    pgdata: Path | None = None
    server: Any = None

    @classmethod
    def embedded(cls, workdir: Path) -> SharedPostgres:
        import pgserver

        pgdata = workdir / "pgdata"
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        return cls(admin_url=str(server.get_uri()), pgdata=pgdata, server=server)

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.cleanup()
            self.server = None

    def describe(self) -> dict[str, str]:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            facts = {
                name: str(row[0])
                for name in ("server_version", "fsync", "synchronous_commit")
                if (row := conn.execute(f"SHOW {name}").fetchone()) is not None
            }
        facts["server"] = "embedded (pgserver)" if self.pgdata else "--database-url"
        return facts

    @contextlib.contextmanager
    def fresh_database(self, prefix: str) -> Iterator[str]:
        """A new database for one side of one row (nothing left from an earlier run:
        no table bloat, no statistics, no cached plans); dropped afterwards."""
        name = f"{prefix}_{os.urandom(4).hex()}"
        url = create_database(self.admin_url, name)
        try:
            yield url
        finally:
            drop_database(self.admin_url, name)

    def cpu(self) -> dict[int, float]:
        """CPU seconds of each embedded PostgreSQL process now (empty for another
        server). Backends that exit between two samples are lost: both sides keep
        their connections in pools for the whole run."""
        if self.pgdata is None:
            return {}
        return {pid: cpu_seconds(pid) for pid in postgres_pids(self.pgdata)}


@dataclass
class CpuSpan:
    """CPU seconds used over a run by the side's own processes and by PostgreSQL:
    the figure that still compares when other work shares the machine."""

    pg: SharedPostgres
    pids: Callable[[], list[int]]
    start_own: dict[int, float] = field(default_factory=dict)
    start_pg: dict[int, float] = field(default_factory=dict)

    def begin(self) -> CpuSpan:
        self.start_own = {pid: cpu_seconds(pid) for pid in self.pids()}
        self.start_pg = self.pg.cpu()
        return self

    def end(self) -> dict[str, float | None]:
        own = sum(cpu_seconds(pid) - self.start_own.get(pid, 0.0) for pid in self.pids())
        now_pg = self.pg.cpu()
        pg = (
            sum(cpu - self.start_pg.get(pid, 0.0) for pid, cpu in now_pg.items())
            if self.pg.pgdata
            else None
        )
        return {"own_s": own, "postgres_s": pg}


class RunBroke(RuntimeError):
    """A run that could not produce its figure (a process died, jobs failed, time out)."""


async def wait_all_succeeded(
    url: str,
    query: str,
    jobs: int,
    procs: list[subprocess.Popen[bytes]],
    timeout_s: float,
) -> tuple[float, float]:
    """Poll `query` (succeeded, failed, last success's time, first start's time) until
    `jobs` have succeeded; returns the last success and the first start as epoch
    seconds. Polls 4 times a second: a cheap aggregate on one connection, the same cost
    for both sides."""
    deadline = time.monotonic() + timeout_s
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            row = await (await conn.execute(query)).fetchone()
            assert row is not None
            succeeded, failed, last, first = int(row[0]), int(row[1]), row[2], row[3]
            if succeeded >= jobs and last is not None and first is not None:
                return float(last.timestamp()), float(first.timestamp())
            if failed:
                raise RunBroke(f"{failed} job(s) did not succeed ({succeeded}/{jobs} did)")
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                raise RunBroke(
                    f"{len(dead)} process(es) exited (code {dead[0].returncode}) with "
                    f"{succeeded}/{jobs} jobs done"
                )
            if time.monotonic() > deadline:
                raise RunBroke(f"only {succeeded}/{jobs} jobs succeeded in {timeout_s:.0f} s")
            await asyncio.sleep(0.25)


async def timed_drain(
    pg: SharedPostgres,
    url: str,
    query: str,
    jobs: int,
    spawn: Callable[[], None],
    processes: Callable[[], list[subprocess.Popen[bytes]]],
) -> dict[str, Any]:
    """The timed part of a throughput run, the same for both sides: `spawn()` the
    workers onto the queued jobs, wait until all succeeded, and return jobs/s (from the
    spawn to the last success), the first start and the CPU of `processes()` (the
    side's own) and of PostgreSQL."""
    span = CpuSpan(pg, lambda: [p.pid for p in processes()]).begin()
    started = time.time()
    spawn()
    last, first = await wait_all_succeeded(url, query, jobs, processes(), throughput_timeout(jobs))
    cpu = span.end()
    return {
        "jobs_per_s": jobs / (last - started),
        "seconds": last - started,
        "first_start_s": first - started,
        **cpu,
    }


async def poll_until(
    what: str,
    probe: Callable[[], Awaitable[T | None]],
    procs: list[subprocess.Popen[bytes]],
    seconds: float,
    interval: float,
) -> T:
    """`probe()` every `interval` until it returns something; RunBroke naming `what`
    when one of `procs` exits or `seconds` pass first (a probe may raise it too)."""
    end = time.monotonic() + seconds
    while (found := await probe()) is None:
        if any(p.poll() is not None for p in procs) or time.monotonic() > end:
            raise RunBroke(what)
        await asyncio.sleep(interval)
    return found


def stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (both queues shut down gracefully on it), SIGKILL after 30 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            logger.warning("pid %d ignored SIGTERM for 30 s: killed", proc.pid)
            proc.kill()
            proc.wait()


def throughput_timeout(jobs: int) -> float:
    """Generous: 5 jobs/s is far below either queue on any shape measured."""
    return max(120.0, jobs / 5)
