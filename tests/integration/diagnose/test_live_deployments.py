"""hodei-diagnose against real deployments: a healthy one (no false alarm), and ones
broken only from outside, through SQL and signals. Each must be named precisely: the
exact check FAILs, the root cause is the right finding, the exit code is as documented."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from hodei.diagnose.runner import ORDER
from hodei.report.checklist import ITEMS
from tests.integration.diagnose.deployments import queue_job, targets, wait_ready_workers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: The checks that run on every deployment: all but those that need --canary or a log
#: file, which the tests name one by one.
#: Checks that need what this test does not give (--metrics-url, --nats-url, a
#: providers file) skip.
OPTIONAL = ("metrics.", "nats.", "providers.")
CORE = [c for c in ORDER if not c.startswith(("canary.", "logs.", *OPTIONAL))]


async def test_healthy_deployment_all_pass_exit_0(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await start_server()
    worker = spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)

    run = await run_diagnose(
        *targets(db_url, app.address), "--canary", "--worker-log", str(worker.log_path)
    )

    assert run.code == 0, (run.failing(), run.stdout, run.stderr)
    statuses = run.statuses()
    assert all(statuses[c] == "PASS" for c in CORE), statuses
    assert {statuses[c] for c in ORDER if c.startswith(OPTIONAL)} == {"SKIP"}, statuses
    assert statuses["canary.lifecycle"] == "PASS"
    assert statuses["canary.logs"] == "PASS"
    assert statuses["logs.grpc_errors"] == "PASS"
    assert run.report["findings"] == [] and run.report["root_cause"] == ""
    ticked = {i["code"]: i["checked"] for i in run.report["checklist"]}
    # Every item observed in this run: the canary went through, logs streamed, the
    # outbox published, and the throughput check passed (asserted above).
    for code in ITEMS:
        assert ticked[code], (code, run.report["checklist"])
    assert "[✓] Dispatcher" in run.stdout and "[✗]" not in run.stdout
    (flow,) = run.report["scenarios"]  # the canary's lifecycle, step by step, all reached
    assert [s["status"] for s in flow["steps"]] == ["PASS"] * 5, flow
    assert flow["metrics"]["dispatch_s"] >= 0 and flow["metrics"]["first_log_s"] > 0

    # Read-only by default: without --canary the diagnosis creates no job.
    with psycopg.connect(db_url, autocommit=True) as conn:
        jobs_before = conn.execute("SELECT count(*) FROM jobs").fetchone()
    run = await run_diagnose(*targets(db_url, app.address))
    assert run.code == 0, run.failing()
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == jobs_before


async def test_worker_stopped_with_sigstop_is_named(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await start_server(recovery={"heartbeat_interval": 0.5, "heartbeat_miss_limit": 3})
    worker = spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    os.kill(worker.pid, signal.SIGSTOP)
    await asyncio.sleep(2.5)  # > 3 missed heartbeats of 0.5 s

    run = await run_diagnose(*targets(db_url, app.address), "--threshold", "heartbeat_stale_s=1.5")

    assert run.code == 2, (run.failing(), run.stdout)
    heartbeat = run.check("workers.heartbeat")
    assert heartbeat["status"] == "FAIL"
    assert any(str(worker.pid) in e for e in heartbeat["evidence"]), heartbeat
    assert run.check("workers.ready")["status"] == "FAIL"
    assert run.report["root_cause_code"] == "WORKER_HEARTBEAT_STALE"
    assert "silent for" in run.report["root_cause"]


async def test_server_stopped_is_unreachable_exit_3(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await start_server()
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    address = app.address
    await app.stop(grace=1.0)

    run = await run_diagnose(*targets(db_url, address))

    assert run.code == 3, (run.failing(), run.stdout)
    assert run.check("server.health")["status"] == "FAIL"
    assert run.check("database.connect")["status"] == "PASS"
    assert run.report["root_cause_code"] == "SERVER_UNREACHABLE"
    assert f"the server at {address} does not answer" in run.report["root_cause"]
    assert "[✗] gRPC server" in run.stdout


async def test_pending_job_removed_from_queue_is_named(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server()
    job_id = await queue_job(
        app.address, ["true"], diag_tokens["admin"]
    )  # no worker yet: it stays PENDING
    with psycopg.connect(db_url, autocommit=True) as conn:
        deleted = conn.execute("DELETE FROM job_queue WHERE job_id = %s", (job_id,)).rowcount
    assert deleted == 1
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)

    run = await run_diagnose(*targets(db_url, app.address), "--threshold", "consistency_grace_s=0")

    assert run.code == 2, (run.failing(), run.stdout)
    check = run.check("consistency.pending_unqueued")
    assert check["status"] == "FAIL"
    assert any(job_id in e for e in check["evidence"])
    assert run.failing() == {"consistency.pending_unqueued": "FAIL"}
    assert run.report["root_cause_code"] == "PENDING_NOT_QUEUED"
    assert "no dispatcher will ever see them" in run.report["root_cause"]


async def test_ready_worker_row_with_stale_heartbeat_is_named(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    # A lax reaper (the server's own LOST marking far away) so that the row stays READY:
    # the diagnosis must catch what the server has not.
    app = await start_server(recovery={"heartbeat_miss_limit": 100_000})
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    ghost = str(uuid.uuid4())
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO workers (id, name, state, last_heartbeat, registered_at) "
            "VALUES (%s, 'ghost', 'READY', now() - interval '10 minutes', "
            "now() - interval '1 hour')",
            (ghost,),
        )

    run = await run_diagnose(*targets(db_url, app.address))

    assert run.code == 2, (run.failing(), run.stdout)
    check = run.check("workers.heartbeat")
    assert check["status"] == "FAIL"
    assert any(ghost in e and "10 min" in e for e in check["evidence"]), check
    assert run.check("workers.ready")["status"] == "PASS"  # the real worker is fine
    assert run.failing() == {"workers.heartbeat": "FAIL"}
    assert run.report["root_cause_code"] == "WORKER_HEARTBEAT_STALE"


async def test_old_unpublished_outbox_backlog_is_named(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await start_server()
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    holder = psycopg.connect(db_url)  # holds the row lock a stuck publisher would hold
    try:
        _insert_held_outbox_row(db_url, holder, "20 minutes")
        run = await run_diagnose(*targets(db_url, app.address))
    finally:
        holder.rollback()
        holder.close()

    assert run.code == 2, (run.failing(), run.stdout)
    check = run.check("outbox.backlog")
    assert check["status"] == "FAIL"
    assert "oldest 20 min" in check["observed"], check
    assert run.report["root_cause_code"] == "OUTBOX_BACKLOG"
    assert "the outbox relay is stopped or stuck" in run.report["root_cause"]


async def test_dispatcher_off_is_named(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server(dispatcher={"enabled": False})
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    await queue_job(app.address, ["true"], diag_tokens["admin"])
    await asyncio.sleep(1.0)

    run = await run_diagnose(*targets(db_url, app.address), "--threshold", "pending_age_s=0.5")

    assert run.code == 2, (run.failing(), run.stdout)
    check = run.check("dispatcher.progress")
    assert check["status"] == "FAIL"
    assert "dispatcher not processing the queue" in check["observed"]
    assert any("dispatcher_enabled=False" in e for e in check["evidence"])
    assert run.report["root_cause_code"] == "DISPATCHER_DISABLED"
    assert "the dispatcher is switched off" in run.report["root_cause"]
    ticked = {i["code"]: i["checked"] for i in run.report["checklist"]}
    assert not ticked["DISPATCHER_CYCLES"] and not ticked["JOBS_LEAVE_PENDING"]


def _insert_held_outbox_row(db_url: str, holder: psycopg.Connection[Any], age: str) -> int:
    """An unpublished outbox row `age` old, row-locked by `holder` (a stuck publisher):
    the relay's FOR UPDATE SKIP LOCKED skips it. Retries if the relay wins the race."""
    for _ in range(5):
        with psycopg.connect(db_url, autocommit=True) as conn:
            row = conn.execute(
                "WITH e AS (INSERT INTO domain_events (event_type, aggregate_type, "
                "aggregate_id, occurred_at) VALUES ('DiagnoseTestEvent', 'job', %s, "
                "now() - %s::interval) RETURNING id) "
                "INSERT INTO outbox_events (event_id, topic, aggregate_id, payload, created_at) "
                "SELECT id, 'test', %s, '{}'::jsonb, now() - %s::interval FROM e RETURNING id",
                (str(uuid.uuid4()), age, str(uuid.uuid4()), age),
            ).fetchone()
        assert row is not None
        if holder.execute(
            "SELECT id FROM outbox_events WHERE id = %s AND published_at IS NULL FOR UPDATE",
            (row[0],),
        ).fetchone():
            return int(row[0])
        holder.rollback()
    pytest.fail("the relay published every inserted row before it could be held")


async def test_young_outbox_backlog_only_warns_exit_1(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await start_server()
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    holder = psycopg.connect(db_url)
    try:
        _insert_held_outbox_row(db_url, holder, "30 seconds")  # warn > 10 s, fail > 60 s
        run = await run_diagnose(*targets(db_url, app.address))
    finally:
        holder.rollback()
        holder.close()

    assert run.code == 1, (run.failing(), run.stdout)
    assert run.failing() == {"outbox.backlog": "WARN"}
    assert "[!] Outbox" in run.stdout


async def test_locked_queue_row_dispatcher_not_claiming_is_named(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server()
    job_id = await queue_job(
        app.address, ["true"], diag_tokens["admin"]
    )  # no worker yet: it stays queued
    holder = psycopg.connect(db_url)  # a stuck transaction holding the queue row
    try:
        assert holder.execute(
            "SELECT job_id FROM job_queue WHERE job_id = %s FOR UPDATE", (job_id,)
        ).fetchone()
        spawn_worker(app.address)
        await wait_ready_workers(db_url, 1)
        await asyncio.sleep(1.5)  # the dispatcher cycles meanwhile and skips the row

        run = await run_diagnose(*targets(db_url, app.address), "--threshold", "pending_age_s=1")
    finally:
        holder.rollback()
        holder.close()

    assert run.code == 2, (run.failing(), run.stdout)
    check = run.check("dispatcher.progress")
    assert check["status"] == "FAIL"
    assert "dispatcher not processing the queue" in check["observed"]
    assert any("transaction open" in e for e in check["evidence"]), check["evidence"]
    assert run.report["root_cause_code"] == "DISPATCHER_NOT_CLAIMING"
    assert "although the dispatcher cycled" in run.report["root_cause"]


async def test_a_server_without_authentication_is_flagged(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await start_server(auth={"mode": "off"})
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)

    run = await run_diagnose(*targets(db_url, app.address), token="")

    assert run.code == 1, (run.failing(), run.stdout)
    assert run.failing() == {"server.auth": "WARN"}
    assert run.check("server.auth")["finding"] == "SERVER_INSECURE"
    assert "authentication is OFF" in run.stdout


async def test_a_refused_token_is_named(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await start_server()
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)

    run = await run_diagnose(*targets(db_url, app.address), "--canary", token="")

    assert run.code == 2, (run.failing(), run.stdout)
    # The canary could not even be submitted: no word about jobs not completing.
    assert run.failing() == {"server.auth": "FAIL"}, run.failing()
    assert run.check("canary.lifecycle")["status"] == "SKIP"
    assert "the server refused this token" in run.check("canary.lifecycle")["observed"]
    check = run.check("server.auth")
    assert check["status"] == "FAIL" and check["finding"] == "DIAGNOSE_TOKEN_REFUSED"
    assert "not authenticated: no token" in check["observed"]
    assert run.check("server.health")["status"] == "PASS"  # health is open
