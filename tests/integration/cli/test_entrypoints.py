"""`hodei server` and `hodei worker` delegate to their packages' entry points."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harness.launchers.base import ANY_METRICS_PORT
from harness.waits import wait_for_async
from hodei.client import HodeiClient
from hodei.worker.command import worker_command
from tests.integration.cli_process import closed_port, finish, hodei, start_cli
from tests.integration.tokens import make_token, server_token

pytestmark = pytest.mark.integration


async def test_hodei_server_serves_and_stops_on_sigint(db_url: str) -> None:
    port = closed_port()
    argv = ["server", "--port", str(port), "--database-url", db_url, "--log-level", "WARNING"]
    token = await make_token(db_url, "ops", "client")  # authentication is on by default
    proc = await start_cli(*argv)
    try:
        async with HodeiClient(f"127.0.0.1:{port}", token=token) as client:
            await client.wait_ready(30)
            info = await client.server_info()
            assert info.dispatcher_enabled and info.schema_version >= 1
            assert not info.insecure
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
    proc = await start_cli(*argv, env={"HODEI_TOKEN": server_token(app.address, "worker")})
    try:
        async with HodeiClient(app.address, token=server_token(app.address)) as client:

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


async def test_hodei_server_without_authentication_on_a_public_address_refuses(
    db_url: str,
) -> None:
    argv = ["server", "--host", "0.0.0.0", "--port", "0", "--auth", "off"]
    result = await hodei(*argv, env={"HODEI_DATABASE_URL": db_url})
    assert result.returncode == 2, str(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, str(result)
    assert lines[0].startswith(
        "hodei server: error: refusing to listen on 0.0.0.0:0 without authentication"
    ), str(result)


async def test_hodei_worker_with_a_bad_address_is_one_line() -> None:
    result = await hodei("worker", "--server", "no-port-here", "--slots", "0")
    assert result.returncode == 2, str(result)
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, str(result)


async def test_worker_refuses_a_fault_without_the_testing_switch() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
    env["HODEI_FAULT_DROP_LOGS"] = "true"
    env.update(ANY_METRICS_PORT)
    argv = worker_command("127.0.0.1:1", name="faulty")
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, err.decode()
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("hodei worker: error: invalid settings: HODEI_FAULT_DROP_LOGS")
    assert "unless HODEI_TESTING=true" in lines[0]


_FORK_WHILE_SERVING = """
import asyncio, os, sys
if sys.argv[1] == "quiet":
    from hodei.logging_setup import quiet_grpc_core
    quiet_grpc_core()
import grpc

async def main() -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    await asyncio.wait_for(channel.channel_ready(), 10)
    for _ in range(5):  # as pgserver's pg_ctl run as another user: a real fork()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    await channel.close()
    await server.stop(None)

asyncio.run(main())
"""


async def _fork_while_serving(mode: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HODEI_", "GRPC_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _FORK_WHILE_SERVING, mode, env=env, stderr=asyncio.subprocess.PIPE
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return err.decode()


async def test_grpc_fork_notes_are_kept_off_stderr() -> None:
    # The control shows the note this guards against ...
    assert "fork_posix.cc" in await _fork_while_serving("default")
    # ... and the entry points' set-up keeps it away.
    assert "fork_posix.cc" not in await _fork_while_serving("quiet")


async def test_the_cli_quiets_grpc_before_it_imports_grpc() -> None:
    # The bug was the order: GRPC_VERBOSITY was set after the command modules had
    # imported grpc, and grpc reads it only at import.
    spy = """
import os, sys
seen = []
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "grpc" and not seen:
            seen.append(os.environ.get("GRPC_VERBOSITY"))
sys.meta_path.insert(0, Spy())
from hodei.cli.main import main
main(["--server", "127.0.0.1:1", "version"])
print("at grpc import:", seen)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HODEI_", "GRPC_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", spy, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _err = await asyncio.wait_for(proc.communicate(), 60)
    assert "at grpc import: ['ERROR']" in out.decode(), out.decode()


@pytest.mark.parametrize("command", ["server", "up"])
async def test_an_unreachable_database_is_one_line_and_exit_3(command: str) -> None:
    # Nothing listens on the closed port: the server cannot start. The user reads one
    # line naming the database (password redacted), as `hodei db migrate` says it.
    url = f"postgresql://nobody:s3cret@127.0.0.1:{closed_port()}/x"
    argv = [command, "--database-url", url, "--port", "0", "--log-level", "WARNING"]
    if command == "up":
        argv += ["--workers", "0"]
    result = await hodei(*argv, seconds=60)
    assert result.returncode == 3, str(result)
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, result.stderr
    assert "cannot use the database at postgresql://nobody:***@127.0.0.1:" in errors[0]
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


async def test_a_port_in_use_is_named_in_one_line(db_url: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await hodei("server", "--database-url", db_url, "--port", str(port), seconds=60)
    assert result.returncode == 3, str(result)
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert errors == [
        f"hodei server: error: cannot listen on 127.0.0.1:{port}: "
        "the port is in use or the address is not this host's"
    ], result.stderr
