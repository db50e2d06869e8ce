"""THE false-alarm test: a healthy deployment under load is healthy.

Two workers, every slot busy, a burst of 200 concurrent submissions queued behind them:
`hodei-diagnose` with its whole default set of checks (and both workers' logs) must exit
0, twenty runs in a row, each taken while jobs wait in the queue. A deployment at
capacity is not a failed one; before, 4 runs of 8 said "no READY worker ... jobs cannot
be assigned" (critical, exit 2)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.integration.diagnose.deployments import queue_burst, wait_ready_workers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

RUNS = 20
BURST = 200
#: Below this many queued jobs a new burst is submitted, so that every run is taken
#: while the workers are busy and jobs wait (2 workers x 0.2 s: ~2 s of work).
REFILL_BELOW = 20


def queue_depth(db_url: str) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM job_queue").fetchone()
    return int(row[0]) if row else 0


async def test_two_busy_workers_and_a_burst_exit_0_twenty_times(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server()
    workers = [spawn_worker(app.address, name=f"load-{i}") for i in range(2)]
    await wait_ready_workers(db_url, 2)
    logs = [arg for w in workers for arg in ("--worker-log", str(w.log_path))]
    args = ["--database-url", db_url, "--server", app.address, *logs]
    command = ["/bin/sh", "-c", "sleep 0.2"]

    started = time.monotonic()
    bursts = 0
    seen: list[tuple[int, int, dict[str, int]]] = []
    for i in range(RUNS):
        if queue_depth(db_url) < REFILL_BELOW:
            await queue_burst(app.address, command, BURST, diag_tokens["admin"])
            bursts += 1
        run = await run_diagnose(*args)
        snap = run.report["snapshot_after"]
        seen.append((run.code, snap["queue_depth"], snap["workers_by_state"]))
        assert run.code == 0, (i, run.failing(), run.report.get("root_cause"), run.stdout)
        # Taken under load: jobs waited while the run looked.
        assert snap["queue_depth"] > 0, (i, snap)
    elapsed = time.monotonic() - started
    # Most runs saw every slot busy (between two jobs a worker is READY for a moment).
    all_busy = sum(1 for _, _, w in seen if w.get("BUSY", 0) == 2)
    assert all_busy >= RUNS // 2, seen
    print(f"{RUNS} runs exit 0 in {elapsed:.1f} s, {bursts} burst(s), all busy in {all_busy}")
