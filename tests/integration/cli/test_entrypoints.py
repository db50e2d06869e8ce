"""`hodei server` and `hodei worker` delegate to their packages' entry points."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harness.waits import wait_for_async
from hodei.client import HodeiClient
from tests.integration.cli_process import closed_port, finish, hodei, start_cli

pytestmark = pytest.mark.integration


async def test_hodei_server_serves_and_stops_on_sigint(db_url: str) -> None:
    port = closed_port()
    argv = ["server", "--port", str(port), "--database-url", db_url, "--log-level", "WARNING"]
    proc = await start_cli(*argv)
    try:
        async with HodeiClient(f"127.0.0.1:{port}") as client:
            await client.wait_ready(30)
            info = await client.server_info()
            assert info.dispatcher_enabled and info.schema_version >= 1
        proc.send_signal(signal.SIGINT)
        result = await finish(proc, argv, 30)
        assert result.returncode == 0, str(result)
        assert "Traceback" not in result.stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_hodei_worker_registers_runs_a_job_and_stops(
    start_server: Callable[..., Awaitable[Any]],
) -> None:
    app = await start_server()
    argv = ["worker", "--server", app.address, "--slots", "3", "--name", "cli-worker"]
    proc = await start_cli(*argv)
    try:
        async with HodeiClient(app.address) as client:

            async def connected_workers() -> list[Any]:
                return [w for w in await client.list_workers() if w.connected]

            workers = await wait_for_async(
                "a connected worker", connected_workers, bool, timeout_s=30, poll_s=0.1
            )
            assert [(w.name, w.slots) for w in workers] == [("cli-worker", 3)]
        ran = await hodei("job", "run", "--", "echo", "via hodei worker", server=app.address)
        assert (ran.returncode, ran.stdout) == (0, "via hodei worker\n"), str(ran)
        proc.send_signal(signal.SIGTERM)
        result = await finish(proc, argv, 30)
        assert result.returncode == 0, str(result)
        assert "Traceback" not in result.stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_hodei_worker_with_a_bad_address_is_one_line() -> None:
    result = await hodei("worker", "--server", "no-port-here", "--slots", "0")
    assert result.returncode == 2, str(result)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, str(result)
