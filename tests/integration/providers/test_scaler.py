"""The scaler for real: a server with a providers file, the `process` provider starting
real `python -m hodei.worker` processes, jobs queued with no worker at all."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from psycopg.rows import dict_row

from harness.waits import wait_for_async
from hodei.api.v1 import common_pb2, workers_pb2
from hodei.db.connector import PsycopgTx
from hodei.diagnose.probes import lifecycle_events
from hodei.domain.auth import Role
from hodei.report.assembly import timeline_from
from hodei.server.app import ServerApp
from hodei.server.tokens import create_token
from tests.integration.cli_process import hodei
from tests.integration.providers.scaling import (
    providers_file,
    provisioned,
    provisioned_started,
    provisioning_events,
    rows,
)
from tests.integration.tokens import make_token
from tests.integration.wire import FakeWorkerStream, Stubs

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[ServerApp]]


def process_entry(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": "process", "max_workers": 2, "idle_ttl": 1.5, **fields}


async def scaling_server(start_server: StartServer, path: Path, **scaling: Any) -> ServerApp:
    return await start_server(
        scaling={"providers_file": path, "interval": 0.2, **scaling},
        recovery={"heartbeat_interval": 0.5},
    )


async def test_a_queued_job_gets_a_worker_which_goes_when_idle(
    start_server: StartServer, tmp_path: Path
) -> None:
    app = await scaling_server(
        start_server, providers_file(tmp_path, process_entry("laptop", tags={"pool": "local"}))
    )
    async with Stubs(app.address) as stubs:
        job = await stubs.queue(["python3", "-c", "print('hi')"], selector={"pool": "local"})
        done = await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=30)
    row = await provisioned_started(app.database_url)
    assert row["provider"] == "laptop" and row["job_id"] == uuid.UUID(job.id)
    assert str(row["worker_id"]) == done.worker_id
    (worker,) = await rows(
        app.database_url, "SELECT * FROM workers WHERE id = %s", row["worker_id"]
    )
    assert worker["provider"] == "laptop" and worker["labels"] == {"pool": "local"}
    # Idle past its TTL (1.5 s): drained, removed, and its process gone.
    await wait_for_async(
        "the provisioned worker to be removed and TERMINATED",
        lambda: rows(
            app.database_url,
            "SELECT p.state, w.state AS worker_state FROM provisioned_workers p "
            "JOIN workers w ON w.id = p.worker_id",
        ),
        lambda r: r == [{"state": "REMOVED", "worker_state": "TERMINATED"}],
        timeout_s=30,
    )
    events = [e["event_type"] for e in await provisioning_events(app.database_url)]
    assert events == ["WorkerProvisioned", "WorkerScaledDown"]
    assert app.scaler is not None
    assert await app.scaler.managed["laptop"].provider.list() == []
    # Every decision went out with its outbox row.
    outbox = await rows(
        app.database_url,
        "SELECT topic FROM outbox_events WHERE topic LIKE 'provisioning.%%' ORDER BY id",
    )
    assert [o["topic"] for o in outbox] == [
        "provisioning.WorkerProvisioned",
        "provisioning.WorkerScaledDown",
    ]
    # The report's timeline of the job shows the worker provisioned for it, and its end.
    timeline = timeline_from(await asyncio.to_thread(lifecycle_events, app.database_url, [job.id]))
    kinds = [e.event_type for e in timeline]
    assert kinds.index("JobCreated") < kinds.index("WorkerProvisioned") < kinds.index("JobAssigned")
    assert kinds[-1] == "WorkerScaledDown", kinds


async def test_a_failing_provider_opens_its_circuit_and_the_next_one_is_used(
    start_server: StartServer, tmp_path: Path
) -> None:
    path = providers_file(
        tmp_path,
        process_entry("broken", priority=10, process={"command": ["/nonexistent/hodei-worker"]}),
        process_entry("spare", priority=1),
    )
    app = await scaling_server(start_server, path, failure_threshold=1, cooldown=60)
    async with Stubs(app.address) as stubs:
        job = await stubs.queue(["true"])
        await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=30)
    events = await provisioning_events(app.database_url)
    failed = [e["payload"] for e in events if e["event_type"] == "ProvisioningFailed"]
    started = [e["payload"] for e in events if e["event_type"] == "WorkerProvisioned"]
    assert len(failed) == 1, events
    assert failed[0]["provider"] == "broken" and failed[0]["circuit_open"] is True
    assert "cannot start '/nonexistent/hodei-worker'" in failed[0]["error"]
    assert [p["provider"] for p in started] == ["spare"]
    (status,) = await rows(
        app.database_url, "SELECT * FROM provider_status WHERE provider = 'broken'"
    )
    assert status["circuit_open"] is True
    assert "cannot start" in status["last_error"]
    # `hodei providers`: both, in priority order, with their health and workers.
    listed = await hodei("providers", "--output", "json", server=app.address)
    assert listed.returncode == 0, str(listed)
    broken, spare = json.loads(listed.stdout)
    assert (broken["name"], broken["circuit_open"], broken["workers"]) == ("broken", True, 0)
    assert "cannot start" in broken["last_error"]
    assert (spare["name"], spare["healthy"], spare["priority"]) == ("spare", True, 1)
    assert spare["workers"] == 1 and spare["max_workers"] == 2
    table = await hodei("providers", server=app.address)
    assert "circuit open" in table.stdout and "spare" in table.stdout, str(table)


async def test_a_bad_providers_file_stops_the_server_in_one_line(tmp_path: Path) -> None:
    path = providers_file(tmp_path, {"name": "x", "type": "docker", "max_workers": -1})
    result = await hodei(
        "server", "--port", "0", "--providers-file", str(path), "--database-url", "postgresql://x"
    )
    assert result.returncode == 2, str(result)
    assert result.stderr.splitlines() == [
        f"hodei server: error: {path}: provider 'x': max_workers: "
        "Input should be greater than or equal to 0"
    ]


async def test_a_selector_keeps_a_job_off_workers_without_its_labels(
    start_server: StartServer, spawn_worker: Any, tmp_path: Path
) -> None:
    """A plain worker runs the job without a selector, never the one whose selector no
    worker and no provider matches: that one waits, and nothing is started for it."""
    app = await scaling_server(
        start_server, providers_file(tmp_path, process_entry("cpu", tags={"pool": "cpu"}))
    )
    await spawn_worker(app.address, slots=2, worker={"labels": "pool=cpu"})
    # READY (its Hello stored): a worker still connecting is no capacity yet.
    await wait_for_async(
        "the labelled worker to be READY",
        lambda: rows(app.database_url, "SELECT state FROM workers"),
        lambda r: r == [{"state": "READY"}],
        timeout_s=10,
    )
    async with Stubs(app.address) as stubs:
        gpu = await stubs.queue(["true"], selector={"pool": "gpu"})
        cpu = await stubs.queue(["true"], selector={"pool": "cpu"})
        plain = await stubs.queue(["true"])
        await stubs.wait_state(cpu.id, common_pb2.JOB_STATE_SUCCEEDED)
        await stubs.wait_state(plain.id, common_pb2.JOB_STATE_SUCCEEDED)
        assert app.scaler is not None
        rounds = app.scaler.rounds
        await wait_for_async(
            "three scaler rounds", lambda: _rounds(app), lambda n: n >= rounds + 3, timeout_s=10
        )
        await stubs.wait_state(gpu.id, common_pb2.JOB_STATE_PENDING)
    assert await provisioned(app.database_url) == []


async def _rounds(app: ServerApp) -> int:
    assert app.scaler is not None
    return app.scaler.rounds


async def test_a_provisioning_token_registers_one_worker_within_its_window(
    start_server: StartServer,
) -> None:
    """Single-use: a second registration is refused. Short-lived for registering only:
    after its window a new registration is refused, but the worker it registered keeps
    its stream (a job may run for hours); revoked, the token is dead."""
    app = await start_server(auth={"mode": "required", "cache_seconds": 0.0})
    async with await psycopg.AsyncConnection.connect(
        app.database_url, autocommit=True, row_factory=dict_row
    ) as conn:
        once, token = await create_token(
            PsycopgTx(conn),
            "provisioned.test",
            Role.WORKER,
            max_registrations=1,
            register_within=1.0,
        )
        _, late = await create_token(
            PsycopgTx(conn),
            "provisioned.late",
            Role.WORKER,
            max_registrations=1,
            register_within=0.01,
        )
    request = workers_pb2.RegisterRequest(name="w", hostname="h", pid=1, slots=1)
    async with Stubs(app.address, token=token) as stubs:
        first = await stubs.workers.Register(request)
        with pytest.raises(grpc.aio.AioRpcError) as reused:
            await stubs.workers.Register(request)
        assert reused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "has already registered its worker" in (reused.value.details() or "")
        await asyncio.sleep(1.2)  # past its registration window
        stream, _ = await FakeWorkerStream.connect(
            stubs, worker_id=first.worker_id, secret=first.session_secret
        )
        await stream.close()
    async with Stubs(app.address, token=late) as stubs:
        with pytest.raises(grpc.aio.AioRpcError) as too_late:
            await stubs.workers.Register(request)
    assert too_late.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "its time to register has passed" in (too_late.value.details() or "")
    # Revoked (the scaler does it when the worker goes): nothing more with it.
    await rows(
        app.database_url,
        "UPDATE api_tokens SET revoked_at = now() WHERE id = %s RETURNING id",
        once.id,
    )
    async with Stubs(app.address, token=token) as stubs:
        with pytest.raises(grpc.aio.AioRpcError) as revoked:
            await FakeWorkerStream.connect(
                stubs, worker_id=first.worker_id, secret=first.session_secret
            )
    assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # An ordinary worker token registers as many workers as it likes.
    plain = await make_token(app.database_url, "plain-worker", "worker")
    async with Stubs(app.address, token=plain) as stubs:
        for _ in range(2):
            assert (await stubs.workers.Register(request)).worker_id


async def test_two_replicas_provision_once_for_one_shortage(
    start_server: StartServer, tmp_path: Path
) -> None:
    """Both servers run a scaler on the same database; the advisory lock and the
    PROVISIONING rows make one worker for a job, not one per replica."""
    path = providers_file(tmp_path, process_entry("shared", max_workers=5, idle_ttl=60))
    first = await scaling_server(start_server, path)
    second = await scaling_server(start_server, path)
    async with Stubs(first.address) as stubs:
        job = await stubs.queue(["true"])
        await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=30)
    assert first.scaler is not None and second.scaler is not None
    rounds = (first.scaler.rounds, second.scaler.rounds)
    await wait_for_async(
        "five more rounds of each scaler",
        lambda: _both_rounds(first, second),
        lambda r: r[0] >= rounds[0] + 5 and r[1] >= rounds[1] + 5,
        timeout_s=15,
    )
    made = await provisioned(first.database_url)
    # Without the lock and the claimed rows, each replica would have started one.
    assert [(r["job_id"], r["state"]) for r in made] == [(uuid.UUID(job.id), "RUNNING")]


async def _both_rounds(first: ServerApp, second: ServerApp) -> tuple[int, int]:
    assert first.scaler is not None and second.scaler is not None
    return first.scaler.rounds, second.scaler.rounds
