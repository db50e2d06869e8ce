"""The fault suite, server side: a server that is frozen (SIGSTOP: the port accepts, nothing
answers), down (refused) or reached at the wrong address is told apart, each with a hint
that fits; and a doctor given no address finds a live server in server_status."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.launchers.base import ANY_METRICS_PORT, free_port
from harness.waits import wait_for_async
from tests.integration.diagnose.deployments import hints, no_crash, wait_ready_workers
from tests.integration.diagnose.fault_timing import named_within

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def server_process(db_url: str, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """`python -m hodei.server` in a process of its own (a signal to it must not stop the
    test); returns (process, listen address read from server_status)."""
    procs: list[subprocess.Popen[bytes]] = []

    def launch() -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
        env.update(ANY_METRICS_PORT)
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hodei.server",
                "--port",
                "0",
                "--database-url",
                db_url,
                "--log-file",
                str(tmp_path / "server.log"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def start() -> tuple[subprocess.Popen[bytes], str]:
        proc = await asyncio.to_thread(launch)
        procs.append(proc)

        def address() -> str | None:
            with psycopg.connect(db_url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT listen_address FROM server_status WHERE stopped_at IS NULL "
                    "AND listen_address IS NOT NULL ORDER BY started_at DESC LIMIT 1"
                ).fetchone()
            return str(row[0]) if row else None

        async def listening() -> str | None:
            return await asyncio.to_thread(address)

        found = await wait_for_async(
            "the server's listen address", listening, bool, 20.0, poll_s=0.1
        )
        assert found is not None
        return proc, found

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def test_frozen_server_is_named_frozen_not_down(
    db_url: str,
    server_process: Callable[[], Any],
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
) -> None:
    proc, address = await server_process()
    spawn_worker(address)
    await wait_ready_workers(db_url, 1)
    os.kill(proc.pid, signal.SIGSTOP)
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        ["--database-url", db_url, "--server", address],
        "SERVER_FROZEN",
        fault="server SIGSTOPped",
        observable_at=observable_at,
    )

    no_crash(run)
    assert run.code == 3, (run.failing(), run.stdout)
    assert run.report["root_cause"] == (
        f"the server at {address} accepts connections but does not answer within 1.5 s: "
        "the process is stopped (SIGSTOP), hung or starved, not down"
    )
    assert not any("Start the server" in h for h in hints(run)), hints(run)
    assert any("kill -CONT" in h for h in hints(run)), hints(run)


async def test_stopped_server_is_down(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await start_server()
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    address = app.address
    await app.stop(grace=1.0)
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        ["--database-url", db_url, "--server", address],
        "SERVER_UNREACHABLE",
        fault="server stopped (refused)",
        observable_at=observable_at,
    )

    no_crash(run)
    assert run.code == 3
    assert run.report["root_cause"].startswith(f"the server at {address} does not answer (")
    assert "Connection refused" in run.report["root_cause"], run.report["root_cause"]
    assert any("Start the server" in h for h in hints(run)), hints(run)


async def test_wrong_address_names_where_live_servers_listen(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await start_server()
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    wrong = f"127.0.0.1:{free_port()}"

    run, _ = await named_within(
        run_diagnose,
        ["--database-url", db_url, "--server", wrong],
        "SERVER_WRONG_ADDRESS",
        fault="doctor pointed at the wrong port",
        observable_at=time.monotonic(),
    )

    no_crash(run)
    assert run.code == 3
    cause = run.report["root_cause"]
    assert cause.startswith(f"nothing answers at {wrong} ("), cause
    assert cause.endswith(f"but live servers listen at {app.address}: the address is wrong")
    assert any(app.address in h for h in hints(run)), hints(run)


async def test_without_server_flag_a_live_server_is_found_in_server_status(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await start_server()  # on a random port: the default one would not find it
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)

    run = await run_diagnose("--database-url", db_url)

    no_crash(run)
    health = run.check("server.health")
    assert health["status"] == "PASS", (health, run.stdout)
    assert run.report["target"]["server_address"] == app.address
    assert any("listen addresses in server_status" in e for e in health["evidence"]), health
    assert run.code == 0, (run.failing(), run.stdout)


async def test_server_clock_skew_is_named(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    # The server's host clock 45 s ahead of the database's, as it writes it with each
    # heartbeat (a testing-only fault setting: HODEI_FAULT_CLOCK_OFFSET_S).
    app = await start_server(faults={"testing": True, "clock_offset_s": 45.0})
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)

    def measured() -> bool:
        with psycopg.connect(db_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT clock_skew_s FROM server_status WHERE server_id = %s", (app.server_id,)
            ).fetchone()
        return bool(row and row[0] is not None)

    async def probe() -> bool:
        return await asyncio.to_thread(measured)

    await wait_for_async("the server's first heartbeat", probe, bool, 15)
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        ["--database-url", db_url, "--server", app.address],
        "SERVER_CLOCK_SKEW",
        fault="server clock 45 s ahead (HODEI_FAULT_CLOCK_OFFSET_S)",
        observable_at=observable_at,
    )

    no_crash(run)
    assert run.code == 1, (run.failing(), run.stdout)
    assert run.failing() == {"time.server_clock": "WARN"}
    (line,) = run.check("time.server_clock")["evidence"]
    assert f"server {app.server_id} ({app.address}): clock 45." in line, line
    assert "s ahead of the database" in line, line
    assert run.report["root_cause"].startswith("1 server clock(s) off by up to 45."), run.report[
        "root_cause"
    ]


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", b""],
    ids=["http1-service", "closes-at-once"],
)
async def test_a_port_owned_by_another_service_is_not_grpc(
    answer: bytes, db_url: str, start_server: Any, run_diagnose: Any
) -> None:
    # Another program on the address given (a web server answering HTTP/1, or one that
    # hangs up on the HTTP/2 preface): the hint is the address, not "start the server",
    # and not "nothing answers" either, even with a live server listening elsewhere.
    live = await start_server()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(64)
        writer.write(answer)
        await writer.drain()
        writer.close()

    other = await asyncio.start_server(serve, "127.0.0.1", 0)
    address = f"127.0.0.1:{other.sockets[0].getsockname()[1]}"
    try:
        observable_at = time.monotonic()
        run, _ = await named_within(
            run_diagnose,
            ["--database-url", db_url, "--server", address, "--only", "server"],
            "SERVER_NOT_GRPC",
            fault=f"another service on the server's port ({'HTTP/1' if answer else 'hang-up'})",
            observable_at=observable_at,
            give_up_s=20,
        )
    finally:
        other.close()
        await other.wait_closed()

    no_crash(run)
    assert run.code == 3, (run.failing(), run.stdout)
    assert run.report["root_cause"].startswith(
        f"something listens at {address} but it is not a gRPC server"
    )
    assert "ss -ltnp" in " ".join(hints(run))
    assert not any("Start the server" in h for h in hints(run)), hints(run)
    assert live.address not in run.report["root_cause"]  # not "wrong address: use <live>"
    assert live.address not in run.report["root_cause"]  # not "wrong address: use <live>"


async def test_workers_of_a_stopped_server_are_named_as_such(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    # Two servers on one database; a worker knows only the second. That server stops:
    # the worker is alive, retrying an address where nothing listens. "Frozen, dead or
    # cut off" would send the operator to the wrong process.
    beats = {"recovery": {"heartbeat_interval": 0.5, "heartbeat_miss_limit": 3}}
    kept = await start_server(**beats)
    gone = await start_server(**beats)
    spawn_worker(kept.address, name="on-kept")
    orphan = spawn_worker(gone.address, name="on-gone")
    await wait_ready_workers(db_url, 2)
    gone_address, gone_id = gone.address, gone.server_id
    await gone.stop(grace=1.0)
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        [
            "--database-url",
            db_url,
            "--server",
            kept.address,
            "--threshold",
            "heartbeat_stale_s=1.5",
        ],
        "WORKER_SERVER_STOPPED",
        fault="the server a worker knows is stopped (worker alive, retrying)",
        observable_at=observable_at,
    )

    no_crash(run)
    assert orphan.proc.poll() is None  # alive all along
    assert run.code == 1, (run.failing(), run.stdout)  # the other worker still serves
    cause = run.report["root_cause"]
    assert f"since server {gone_id} ({gone_address}) stopped" in cause, cause
    assert f"Start the server again at {gone_address}" in " ".join(hints(run)), hints(run)
