"""procrastinate's side of the comparison: its schema in a fresh database, the jobs
deferred in batches, then K `procrastinate worker --concurrency S` processes (the CLI
its documentation starts workers with; LISTEN/NOTIFY on, every other option its
default unless --procrastinate-env sets PROCRASTINATE_* variables the CLI reads)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from procrastinate_app import LATENCY_MARK, RUN_TRUE, URL_VARIABLE, make_app
from shared_pg import RunBroke, SharedPostgres, poll_until, stop_processes, timed_drain

_HERE = Path(__file__).resolve().parent

#: The status of every job, and the time of the last success: the 'succeeded' event's
#: `at` is now() of the transaction that finished the job (procrastinate_finish_job).
SUCCEEDED_QUERY = """
SELECT count(*) FILTER (WHERE status = 'succeeded'),
       count(*) FILTER (WHERE status IN ('failed', 'aborted', 'cancelled')),
       (SELECT max(at) FROM procrastinate_events WHERE type = 'succeeded'),
       (SELECT min(at) FROM procrastinate_events WHERE type = 'started')
FROM procrastinate_jobs
"""

#: Jobs per batch_defer call (one INSERT each): queueing is not what is timed.
DEFER_BATCH = 1000


def _spawn_workers(
    url: str, workers: int, slots: int, workdir: Path, extra_env: dict[str, str]
) -> list[subprocess.Popen[bytes]]:
    python_path = os.pathsep.join(filter(None, [str(_HERE), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, **extra_env, URL_VARIABLE: url, "PYTHONPATH": python_path}
    procs: list[subprocess.Popen[bytes]] = []
    for index in range(workers):
        with (workdir / f"procrastinate-{index + 1}.err").open("wb") as err:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "procrastinate",
                        "--app=procrastinate_app.app",
                        "worker",
                        f"--concurrency={slots}",
                        f"--name=peers-{index + 1}",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            )
    return procs


def throughput(
    pg: SharedPostgres,
    workdir: Path,
    workers: int,
    slots: int,
    jobs: int,
    extra_env: dict[str, str],
) -> dict[str, Any]:
    with pg.fresh_database("peers_procrastinate") as url:
        return asyncio.run(_throughput(pg, url, workdir, workers, slots, jobs, extra_env))


async def _throughput(
    pg: SharedPostgres,
    url: str,
    workdir: Path,
    workers: int,
    slots: int,
    jobs: int,
    extra_env: dict[str, str],
) -> dict[str, Any]:
    app = make_app(url)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        deferrer = app.configure_task(name=RUN_TRUE)
        for start in range(0, jobs, DEFER_BATCH):
            await deferrer.batch_defer_async(*({} for _ in range(min(DEFER_BATCH, jobs - start))))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        return await timed_drain(
            pg,
            url,
            SUCCEEDED_QUERY,
            jobs,
            lambda: procs.extend(_spawn_workers(url, workers, slots, workdir, extra_env)),
            lambda: procs,
        )
    finally:
        stop_processes(procs)


def latency(
    pg: SharedPostgres,
    workdir: Path,
    workers: int,
    slots: int,
    jobs: int,
    warmup: int,
    gap: float,
    extra_env: dict[str, str],
) -> tuple[list[float], list[float]]:
    """Seconds from the defer call to the task's first line, one job at a time; and,
    for the same jobs, to its `true` started (where Hodei's figure ends)."""
    with pg.fresh_database("peers_procrastinate") as url:
        return asyncio.run(_latency(url, workdir, workers, slots, jobs, warmup, gap, extra_env))


async def _latency(
    url: str,
    workdir: Path,
    workers: int,
    slots: int,
    jobs: int,
    warmup: int,
    gap: float,
    extra_env: dict[str, str],
) -> tuple[list[float], list[float]]:
    marks = workdir / "marks"
    marks.mkdir(parents=True, exist_ok=True)
    app = make_app(url)
    samples: list[float] = []
    to_spawn: list[float] = []
    async with (
        app.open_async(),
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
    ):
        await app.schema_manager.apply_schema_async()
        procs = _spawn_workers(url, workers, slots, workdir, extra_env)
        try:
            await _wait_workers(conn, workers, procs)
            deferrer = app.configure_task(name=LATENCY_MARK)
            for n in range(warmup + jobs):
                t0 = time.time()
                job_id = await deferrer.defer_async(marks=str(marks), n=n)
                first_line, spawned = await _wait_mark(marks / str(n), procs)
                await _wait_succeeded(conn, job_id, procs)
                if n >= warmup:
                    samples.append(first_line - t0)
                    to_spawn.append(spawned - t0)
                await asyncio.sleep(gap)
        finally:
            stop_processes(procs)
    return samples, to_spawn


async def _wait_workers(
    conn: psycopg.AsyncConnection[Any], workers: int, procs: list[subprocess.Popen[bytes]]
) -> None:
    """Until every worker has registered (its row in procrastinate_workers)."""

    async def registered() -> bool | None:
        cur = await conn.execute("SELECT count(*) FROM procrastinate_workers")
        row = await cur.fetchone()
        return True if row is not None and row[0] >= workers else None

    await poll_until("procrastinate workers did not start", registered, procs, 60, 0.05)


def _read_mark(path: Path) -> tuple[float, float] | None:
    """The task's first-line time and its `true`'s start, once its mark exists. A stat
    of a local file, in the loop itself: a thread hop (to_thread) would cost more than
    the read."""
    try:
        first_line, spawned = path.read_text().split()
    except FileNotFoundError:
        return None
    return float(first_line), float(spawned)


async def _wait_mark(path: Path, procs: list[subprocess.Popen[bytes]]) -> tuple[float, float]:
    async def mark() -> tuple[float, float] | None:
        return _read_mark(path)

    what = f"no latency mark {path.name} from the procrastinate workers"
    return await poll_until(what, mark, procs, 30, 0.002)


async def _wait_succeeded(
    conn: psycopg.AsyncConnection[Any], job_id: int, procs: list[subprocess.Popen[bytes]]
) -> None:
    """The job's finish committed: the next one starts on an idle queue."""

    async def succeeded() -> bool | None:
        cur = await conn.execute("SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,))
        row = await cur.fetchone()
        status = str(row[0]) if row else "missing"
        if status not in ("todo", "doing", "succeeded"):
            raise RunBroke(f"procrastinate job {job_id}: {status}")
        return True if status == "succeeded" else None

    await poll_until(f"procrastinate job {job_id} did not finish", succeeded, procs, 30, 0.005)
