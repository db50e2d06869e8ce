"""hodei-diagnose draws the latency chart of the jobs that finished recently, from the
jobs table, and its bars add up to those jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from harness.waits import wait_until_async
from tests.integration.diagnose.deployments import queue_burst, targets, wait_ready_workers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

JOBS = 12


def finished_count(db_url: str) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL").fetchone()
    return int(row[0]) if row else 0


async def test_the_doctor_charts_the_latency_of_the_jobs_that_finished(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server()
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    await queue_burst(app.address, ["/bin/sh", "-c", "sleep 0.05"], JOBS, diag_tokens["admin"])
    await wait_until_async(f"{JOBS} jobs to finish", lambda: finished_count(db_url) == JOBS, 60)

    run = await run_diagnose(*targets(db_url, app.address))

    (chart,) = run.report["charts"]
    assert chart["code"] == "CHART_RECENT_LATENCY"
    assert chart["params"]["jobs"] == JOBS and chart["params"]["minutes"] == 5
    assert sum(chart["values"]) == JOBS
    assert len(chart["values"]) == len(chart["x_labels"]) <= 20
    # Each job slept 50 ms: no latency below that.
    assert float(chart["x_labels"][0].split("-")[1]) > 0.05
