"""The procrastinate app of the peer benchmark: what its workers run.

Started as procrastinate's documentation says, one process per worker:

    PEERS_PROCRASTINATE_URL=postgresql://... PYTHONPATH=benchmarks/peers \\
        python -m procrastinate --app=procrastinate_app.app worker --concurrency S

The tasks are async and spawn `true` with asyncio.create_subprocess_exec, the job
Hodei's workers run; a non-zero exit fails the task as it fails a Hodei job.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import procrastinate

#: The database the workers and the driver use (a fresh one per row).
URL_VARIABLE = "PEERS_PROCRASTINATE_URL"
RUN_TRUE = "run_true"
LATENCY_MARK = "latency_mark"


async def _run_true() -> float:
    """Run `true`; the time.time() at which its process had started (the point where
    Hodei's latency figure ends: a job's started_at is taken when its spawn returns)."""
    process = await asyncio.create_subprocess_exec("true")
    started = time.time()
    code = await process.wait()
    if code != 0:
        raise RuntimeError(f"true exited {code}")
    return started


def make_app(url: str) -> procrastinate.App:
    """An App on `url` with the benchmark's tasks (the driver makes one per row to
    defer; the workers import `app` below)."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name=RUN_TRUE)
    async def run_true() -> None:
        await _run_true()

    @app.task(name=LATENCY_MARK)
    async def latency_mark(marks: str, n: int) -> None:
        # The task's first line: the end of the idle latency (defer -> task running),
        # as issue 16 defines it; and when its `true` had started, the end of Hodei's.
        first_line = time.time()
        spawned = await _run_true()
        # Written after the job: the file system, not the database, carries the mark,
        # so the driver's wait adds no query beside the worker's own.
        partial = Path(marks) / f"{n}.partial"
        partial.write_text(f"{first_line!r} {spawned!r}")
        partial.rename(Path(marks) / str(n))  # whole or absent to the reader

    return app


app = make_app(os.environ.get(URL_VARIABLE, ""))
