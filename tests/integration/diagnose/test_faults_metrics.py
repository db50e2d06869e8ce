"""hodei-diagnose --metrics-url against a real deployment whose processes serve their
Prometheus metrics, with the faults only those metrics show, injected from outside:
the network path from a server to its database cut while the doctor still reaches
the database, and a worker's connection to its server reset again and again (the
seed's `h2 protocol error` every 30 s, sped up). A healthy deployment read through its
metrics is quiet."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from harness.waits import wait_for_async
from tests.integration.diagnose.deployments import (
    no_crash,
    queue_job,
    targets,
    wait_job,
    wait_ready_workers,
)
from tests.integration.diagnose.fault_timing import named_within
from tests.integration.diagnose.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metrics_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/metrics"


async def sample(url: str, name: str) -> float:
    """The sum of a metric's samples at `url` now (read in a thread: the server under
    test serves on this loop)."""
    from prometheus_client.parser import text_string_to_metric_families

    def read() -> float:
        with urllib.request.urlopen(url, timeout=2) as reply:
            text = reply.read().decode()
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name
        )

    return await asyncio.to_thread(read)


@pytest.fixture
def proxies() -> Iterator[Callable[[str], TcpProxy]]:
    made: list[TcpProxy] = []

    def make(target: str) -> TcpProxy:
        host, _, port = target.rpartition(":")
        proxy = TcpProxy(host, int(port))
        made.append(proxy)
        return proxy

    yield make
    for p in made:
        p.close()


async def test_a_healthy_deployment_read_through_its_metrics_is_quiet(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server(metrics={"port": 0})
    worker_port = free_port()
    spawn_worker(app.address, env={"HODEI_WORKER_METRICS_PORT": str(worker_port)})
    await wait_ready_workers(db_url, 1)
    job = await queue_job(app.address, ["sh", "-c", "echo hi"], diag_tokens["admin"])
    await wait_job(db_url, job, ("SUCCEEDED",))

    run = await run_diagnose(
        *targets(db_url, app.address),
        "--metrics-url",
        f"{metrics_url(app.metrics_port)},127.0.0.1:{worker_port}",
    )

    no_crash(run)
    metrics = {k: v for k, v in run.statuses().items() if k.startswith("metrics.")}
    assert metrics == dict.fromkeys(
        [
            "metrics.endpoints",
            "metrics.server_database",
            "metrics.db_pools",
            "metrics.grpc_errors",
            "metrics.worker_reconnects",
        ],
        "PASS",
    ), run.failing()
    assert run.code == 0, run.failing()


async def test_a_server_cut_off_from_its_database_is_named_while_the_doctor_reaches_it(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    proxies: Callable[[str], TcpProxy],
) -> None:
    # The server reaches PostgreSQL through the proxy (on TCP, whether the database
    # listens on TCP or, embedded, on a unix socket only); the doctor directly.
    info = conninfo_to_dict(db_url)
    proxy = proxies(f"{info.get('host') or '127.0.0.1'}:{info.get('port') or 5432}")
    via_proxy = f"postgresql://{info.get('user', 'postgres')}@{proxy.address}/{info['dbname']}"
    app = await start_server(
        database={"url": via_proxy}, metrics={"port": 0}, recovery={"reaper_interval": 0.2}
    )
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    url = metrics_url(app.metrics_port)

    proxy.cut()
    await wait_for_async(
        "the server's hodei_database_up to fall to 0",
        lambda: sample(url, "hodei_database_up"),
        lambda up: up == 0,
        15.0,
    )
    run, _ = await named_within(
        run_diagnose,
        [*targets(db_url, app.address), "--metrics-url", url],
        "SERVER_DATABASE_UNREACHABLE",
        fault="network path from the server to its database cut",
        observable_at=time.monotonic(),
    )

    no_crash(run)
    assert run.code == 2
    assert run.check("metrics.server_database")["status"] == "FAIL"
    assert run.report["root_cause"] == (
        f"1 server(s) report their database unreachable ({url}: hodei_database_up = 0); "
        "the doctor reaches the same database: the fault is on the server's side: "
        "their calls fail UNAVAILABLE and their loops wait"
    ), run.report["root_cause"]
    # Stopping a server cut off from its database does not wait on the database.
    began = time.monotonic()
    await app.stop(grace=1.0)
    assert time.monotonic() - began < 5.0


async def test_a_worker_whose_connection_keeps_being_cut_is_flapping(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    proxies: Callable[[str], TcpProxy],
) -> None:
    app = await start_server(metrics={"port": 0})
    proxy = proxies(app.address)
    worker_port = free_port()
    spawn_worker(
        proxy.address,
        env={
            "HODEI_WORKER_METRICS_PORT": str(worker_port),
            "HODEI_RECONNECT_MAX_BACKOFF": "0.5",
        },
    )
    await wait_ready_workers(db_url, 1)
    worker_url = metrics_url(worker_port)
    for cut in range(1, 4):
        # A middlebox dropping the connection, as the seed's did every 30 s.
        assert proxy.reset() >= 1
        await wait_for_async(
            f"the worker's reconnect #{cut}",
            lambda: sample(worker_url, "hodei_worker_reconnects_total"),
            lambda n, cut=cut: n >= cut,  # type: ignore[misc]
            20.0,
        )

    run = await run_diagnose(
        *targets(db_url, app.address), "--metrics-url", worker_url, "--only", "metrics"
    )

    no_crash(run)
    check = run.check("metrics.worker_reconnects")
    assert (check["status"], check["finding"]) == ("WARN", "WORKER_STREAM_FLAPPING"), check
    assert check["observed"] == "1 of 1 worker(s) keep losing their stream"
    assert f"{worker_url}: 3 reconnect(s) in" in check["evidence"][0], check["evidence"]
