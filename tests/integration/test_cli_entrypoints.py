"""`hodei server` and `hodei worker` delegate to their packages' entry points."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hodei.client import HodeiClient
from hodei.worker.command import worker_command
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
            for _ in range(300):
                workers = [w for w in await client.list_workers() if w.connected]
                if workers:
                    break
                await asyncio.sleep(0.1)
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


async def test_worker_refuses_a_fault_without_the_testing_switch() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
    env["HODEI_FAULT_DROP_LOGS"] = "true"
    argv = worker_command("127.0.0.1:1", name="faulty")
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, err.decode()
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("hodei worker: invalid setting 'faults': HODEI_FAULT_DROP_LOGS")
    assert "unless HODEI_TESTING=true" in lines[0]
