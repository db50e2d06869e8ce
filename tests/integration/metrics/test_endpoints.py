"""The /metrics endpoints of a real server and a real worker process: where they
listen, what they serve, and how they refuse a port in use."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harness.launchers.base import ANY_METRICS_PORT, free_port
from hodei import __version__
from hodei.errors import Unavailable
from tests.integration.conftest import SpawnWorker
from tests.integration.metrics.scrape import scrape

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[Any]]


async def test_the_server_serves_its_build_info_on_a_free_port(start_server: StartServer) -> None:
    app = await start_server()
    assert app.metrics_port > 0
    page = await scrape(app.metrics_port)
    assert page.value("hodei_build_info", component="server", version=__version__) == 1, page.text[
        :2000
    ]
    assert page.families["hodei_jobs_submitted"].type == "counter"


async def test_the_worker_serves_its_build_info_on_its_port(
    start_server: StartServer, spawn_worker: SpawnWorker
) -> None:
    app = await start_server()
    port = free_port()
    await spawn_worker(app.address, metrics={"worker_port": port})
    page = await scrape(port)
    assert page.value("hodei_build_info", component="worker", version=__version__) == 1
    assert page.families["hodei_worker_jobs"].type == "counter"


async def test_metrics_off_serves_nothing(start_server: StartServer) -> None:
    port = free_port()
    app = await start_server(metrics={"enabled": False, "port": port})
    assert app.metrics_port == 0
    with pytest.raises(OSError):
        await scrape(port)


async def test_a_metrics_port_in_use_fails_the_start_in_one_line(
    start_server: StartServer,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(Unavailable) as err:
            await start_server(metrics={"port": port})
    assert str(err.value).startswith(
        f"cannot serve metrics on 127.0.0.1:{port}: the port is in use"
    )


async def test_the_server_process_says_one_line_when_its_metrics_port_is_taken(
    db_url: str,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "hodei.server", "--port", "0", "--database-url", db_url]
        argv += ["--metrics-port", str(port)]
        env = {"PATH": "/usr/bin:/bin", **ANY_METRICS_PORT}
        done = await asyncio.to_thread(
            subprocess.run, argv, env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"hodei server: error: cannot serve metrics on 127.0.0.1:{port}: the port is in use "
        "(set HODEI_METRICS_PORT / --metrics-port, 0 for any free port, "
        "or HODEI_METRICS=false)"
    ], done.stderr


async def test_the_worker_process_says_one_line_when_its_metrics_port_is_taken(
    start_server: StartServer,
) -> None:
    app = await start_server()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "hodei.worker", "--server", app.address]
        argv += ["--worker-metrics-port", str(port)]
        done = await asyncio.to_thread(
            subprocess.run,
            argv,
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"hodei worker: error: cannot serve metrics on 127.0.0.1:{port}: the port is in use"
    ), done.stderr
