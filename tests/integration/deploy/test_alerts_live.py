"""The alert rules against a real server, scraped by a real Prometheus: quiet while the
deployment is idle (no worker and no job is no incident), and on the way to firing once
a job waits with no worker and no dispatcher. `for:` keeps them pending for minutes, so
the test waits for `pending`: the expression holds on the real exposition, not only on
the synthetic series of hodei-alerts.test.yml."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from harness.prometheus import SERVER_JOB, PrometheusServer, require_tool
from harness.waits import wait_for, wait_for_async

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[Any]]


def _active(prometheus: PrometheusServer) -> dict[str, str]:
    return {a["labels"]["alertname"]: a["state"] for a in prometheus.alerts()}


async def test_idle_is_quiet_and_a_stuck_job_raises_the_dispatcher_and_worker_alerts(
    start_server: StartServer, stubs_for: Callable[[str], Any], tmp_path: Path
) -> None:
    binary = require_tool("prometheus")
    app = await start_server(dispatcher={"enabled": False}, metrics={"refresh_interval": 0.5})
    targets = {SERVER_JOB: [f"127.0.0.1:{app.metrics_port}"]}
    prometheus = await asyncio.to_thread(PrometheusServer(binary, tmp_path, targets).start)
    try:
        # Idle: scraped and every rule evaluated, nothing active.
        await wait_for_async(
            "the server scraped and the rules evaluated",
            lambda: asyncio.to_thread(lambda: (prometheus.query("up == 1"), prometheus.rules())),
            lambda got: (
                bool(got[0]) and all(not r["lastEvaluation"].startswith("0001-") for r in got[1])
            ),
            timeout_s=30,
            poll_s=0.25,
        )
        assert await asyncio.to_thread(_active, prometheus) == {}

        stubs = stubs_for(app.address)
        await stubs.queue(["true"])
        active = await asyncio.to_thread(
            wait_for,
            "HodeiNoReadyWorker and HodeiDispatcherStalled pending",
            lambda: _active(prometheus),
            lambda alerts: {"HodeiNoReadyWorker", "HodeiDispatcherStalled"} <= set(alerts),
            30.0,
            0.25,
        )
        assert set(active.values()) == {"pending"}, active  # `for: 2m` has not elapsed
        assert set(active) == {"HodeiNoReadyWorker", "HodeiDispatcherStalled"}, active
    finally:
        await asyncio.to_thread(prometheus.stop)
