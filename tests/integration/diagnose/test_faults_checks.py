"""The fault suite, for the checks of this file's faults: each fault is injected from
outside (SQL from another connection, a log written by a real process) into a real
deployment, and the real `hodei-diagnose` must name it: exact finding code, the
root-cause sentence, the exit code; `fault_timing.named_within` measures how long after
the fault became observable it was named."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.waits import wait_for_async
from hodei.db.migrate import latest_version
from hodei.logging_setup import TextFormatter
from tests.integration.diagnose.deployments import (
    deployment,
    queue_job,
    targets,
    wait_job,
    wait_ready_workers,
)
from tests.integration.diagnose.fault_timing import named_within

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def inject(db_url: str, *statements: str | tuple[str, tuple[Any, ...]]) -> float:
    """Run the statements in one transaction from another connection; returns when
    they became observable (committed)."""
    with psycopg.connect(db_url) as conn:
        for stmt in statements:
            sql, params = stmt if isinstance(stmt, tuple) else (stmt, ())
            conn.execute(sql, params or None)
        conn.commit()
    return time.monotonic()


async def wait_log(path: Path, text: str, count: int = 1, within_s: float = 20.0) -> None:
    def count_in_file() -> int:
        return path.read_text().count(text) if path.exists() else 0

    async def seen() -> int:
        return await asyncio.to_thread(count_in_file)

    await wait_for_async(f"{count} x {text!r} in {path.name}", seen, lambda n: n >= count, within_s)


# --- the schema --------------------------------------------------------------------


async def test_a_deleted_middle_migration_row_is_named(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    at = inject(db_url, "DELETE FROM schema_migrations WHERE version = 3")

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "SCHEMA_MIGRATIONS_MISSING",
        fault="schema_migrations row 3 deleted",
        observable_at=at,
    )

    assert run.code == 2, (run.failing(), run.stdout)
    assert run.failing() == {"database.schema": "FAIL"}
    assert run.report["root_cause"].startswith(
        "1 migration(s) not recorded in schema_migrations (0003_active_jobs_by_worker) "
        f"although version {latest_version()} is"
    ), run.report["root_cause"]
    check = run.check("database.schema")
    assert "INSERT INTO schema_migrations (version, name) VALUES (3, 'active_jobs_by_worker')" in (
        " ".join(check["remediation"])
    )


async def test_a_dropped_index_and_column_are_named(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    at = inject(
        db_url, "DROP INDEX jobs_labels_idx", "ALTER TABLE outbox_events DROP COLUMN last_error"
    )

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "SCHEMA_OBJECTS_MISSING",
        fault="index jobs_labels_idx and column outbox_events.last_error dropped",
        observable_at=at,
    )

    assert run.code == 2, (run.failing(), run.stdout)
    assert run.failing() == {"database.schema": "FAIL"}
    assert run.report["root_cause"] == (
        "2 schema object(s) the migrations create are missing or different: "
        "index jobs_labels_idx missing, column outbox_events.last_error missing"
    ), run.report["root_cause"]
    actions = " ".join(run.check("database.schema")["remediation"])
    assert "hodei/db/migrations/0001_initial.sql" in actions, actions


# --- recorded times ------------------------------------------------------------------


async def test_heartbeats_ahead_of_the_database_clock_are_named(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    ghost = str(uuid.uuid4())
    # A worker row stamped 10 min ahead (no staleness check can see it go silent) and a
    # server whose clock runs 5 min ahead of the database's.
    at = inject(
        db_url,
        (
            "INSERT INTO workers (id, name, state, last_heartbeat) "
            "VALUES (%s, 'ahead', 'READY', now() + interval '10 minutes')",
            (ghost,),
        ),
        "INSERT INTO server_status (server_id, version, started_at, heartbeat_at, "
        "dispatcher_enabled, outbox_relay_enabled) VALUES ('skewed-server', 'x', now(), "
        "now() + interval '5 minutes', true, true)",
    )

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "HEARTBEAT_IN_FUTURE",
        fault="worker and server heartbeats ahead of the database clock",
        observable_at=at,
    )

    assert run.code == 2, (run.failing(), run.stdout)
    assert run.failing() == {"time.heartbeats": "FAIL"}
    assert run.report["root_cause"].startswith(
        f"2 heartbeat(s) ahead of the database clock by up to 10 min (worker {ghost[:8]}, "
        "server skewed-s): the clock that wrote them is ahead"
    ), run.report["root_cause"]
    evidence = run.check("time.heartbeats")["evidence"]
    assert evidence == [
        f"worker {ghost}: heartbeat 10 min ahead of the database clock",
        "server skewed-server: heartbeat 5 min ahead of the database clock",
    ], evidence


async def test_job_timestamps_out_of_order_are_named(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    job_id = await queue_job(app.address, ["true"], diag_tokens["admin"])
    await wait_job(db_url, job_id, ("SUCCEEDED",))
    at = inject(
        db_url,
        ("UPDATE jobs SET started_at = created_at - interval '5 minutes' WHERE id = %s", (job_id,)),
    )

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "JOB_TIMESTAMPS_IMPOSSIBLE",
        fault="started_at before created_at",
        observable_at=at,
    )

    assert run.code == 2, (run.failing(), run.stdout)
    assert run.failing() == {"time.job_order": "FAIL"}
    assert run.report["root_cause"] == (
        f"1 job(s) with timestamps out of order (job {job_id[:8]}: started_at before "
        "created_at by 5 min): a clock stepped back or the rows were edited by hand, and "
        "every duration computed from them is wrong"
    ), run.report["root_cause"]
    assert run.check("time.job_order")["evidence"] == [
        f"job {job_id} (SUCCEEDED): started_at before created_at by 5 min"
    ]


# --- the canary ----------------------------------------------------------------------


async def test_the_canary_with_every_slot_busy_says_so_at_once(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    spawn_worker(app.address, name="second")
    await wait_ready_workers(db_url, 2)
    # Both slots taken by long jobs and one more queued behind them.
    jobs = [await queue_job(app.address, ["sleep", "60"], diag_tokens["admin"]) for _ in range(3)]
    for job_id in jobs[:2]:
        await wait_job(db_url, job_id, ("RUNNING",))
    at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        [*targets(db_url, app.address), "--canary"],
        "CANARY_NO_FREE_SLOT",
        fault="every slot busy when the canary runs",
        observable_at=at,
    )

    assert run.code == 1, (run.failing(), run.stdout)
    assert run.failing() == {"canary.lifecycle": "WARN"}
    assert run.report["root_cause"] == (
        "the canary could not run: all 2 slot(s) busy (2 worker(s) full, 0 job(s) queued and "
        "1 held by workers ahead): the deployment is at capacity, so the lifecycle was not "
        "verified this time (a warning: a full deployment is not a fault)"
    ), run.report["root_cause"]
    assert run.check("canary.logs")["status"] == "SKIP"
    # The third job is held by one of the workers (prefetch 1 each: docs/worker.md): that
    # one is BUSY, the other READY with its only slot taken.
    assert run.check("workers.ready")["observed"].startswith("1 READY, 1 BUSY: 0 of 2 slot(s)")
    # At once: not after the canary's 30 s timeout.
    assert run.report["duration_s"] < 10, run.report["duration_s"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        canaries = conn.execute(
            "SELECT count(*) FROM jobs WHERE name = 'hodei-diagnose-canary'"
        ).fetchone()
    assert canaries == (0,)  # nothing queued behind the load


# --- process logs --------------------------------------------------------------------


@pytest.fixture
def server_log(tmp_path: Path) -> Iterator[Path]:
    """The in-process servers' log lines in a file, formatted as `hodei server` writes
    them (what an operator passes with --server-log)."""
    path = tmp_path / "server.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(TextFormatter())
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("hodei")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


async def test_reconnect_lines_after_a_server_restart_are_no_alarm(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    server_log: Path,
) -> None:
    app = await start_server()
    worker = spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    port = app.port
    # Stopped without grace, and down while the worker's reconnect attempts fail: the
    # worker logs its stream ending UNAVAILABLE and connections refused.
    await app.stop(grace=0)
    await wait_log(worker.log_path, "reconnecting in", count=3)
    restarted = await start_server(server={"port": port})
    await wait_log(worker.log_path, "stream open", count=2)
    await wait_ready_workers(db_url, 1)

    run = await run_diagnose(
        *targets(db_url, restarted.address),
        "--worker-log",
        str(worker.log_path),
        "--server-log",
        str(server_log),
    )

    assert run.code == 0, (run.failing(), run.stdout)
    check = run.check("logs.grpc_errors")
    assert check["status"] == "PASS", check
    # Seen and counted (the refused connections while it was down), but no finding.
    assert re.match(r"0 gRPC protocol error\(s\), [1-9]\d* reconnect line\(s\)", check["observed"])
    assert any("Connection refused" in e for e in check["evidence"]), check["evidence"]
    assert "GRPC_STREAM_ERRORS" not in {f["code"] for f in run.report["findings"]}
    assert "keepalive" not in run.stdout.lower()


async def test_a_real_too_many_pings_goaway_is_an_alarm(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    server_log: Path,
) -> None:
    # Keepalive settings that do not match, from outside: the worker pings every 100 ms,
    # the server accepts pings 10 s apart at best and answers with GOAWAY too_many_pings.
    app = await start_server(server={"min_ping_interval_ms": 10_000})
    worker = spawn_worker(app.address, env={"HODEI_KEEPALIVE_TIME_MS": "100"})
    await wait_ready_workers(db_url, 1)
    await wait_log(worker.log_path, "Too many pings")  # the worker's stream ended so
    at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        [*targets(db_url, app.address), "--worker-log", str(worker.log_path)],
        "GRPC_STREAM_ERRORS",
        check="logs.grpc_errors",
        fault="keepalive mismatch: GOAWAY too_many_pings",
        observable_at=at,
    )

    assert run.code == 2, (run.failing(), run.stdout)
    assert run.check("logs.grpc_errors")["status"] == "FAIL"
    assert run.report["root_cause_code"] == "GRPC_STREAM_ERRORS"
    assert re.fullmatch(
        r"\d+ HTTP/2 protocol error\(s\) in worker:diag-worker-0\.log \(e\.g\. \".*worker "
        r"stream ended: UNAVAILABLE Too many pings worker_id=[0-9a-f-]+\"\): a peer breaks the "
        r"protocol or the keepalive policy and the worker stream is torn down",
        run.report["root_cause"],
    ), run.report["root_cause"]
    actions = " ".join(run.check("logs.grpc_errors")["remediation"])
    assert "Align keepalive settings" in actions


# --- the dispatcher's sentence -------------------------------------------------------


async def test_the_dispatcher_off_sentence_counts_every_pending_job(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await deployment(db_url, start_server, spawn_worker, dispatcher={"enabled": False})
    for _ in range(3):
        await queue_job(app.address, ["true"], diag_tokens["admin"])
    at = time.monotonic()

    # Default thresholds: the jobs are seconds old, younger than pending_age_s (30 s).
    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "DISPATCHER_DISABLED",
        fault="dispatcher switched off, 3 jobs queued",
        observable_at=at,
    )

    assert run.code == 2, (run.failing(), run.stdout)
    assert re.fullmatch(
        r"1 live server\(s\) with dispatcher_enabled = false and 3 job\(s\) PENDING "
        r"\(oldest [\d.]+ (ms|s)\): the dispatcher is switched off",
        run.report["root_cause"],
    ), run.report["root_cause"]
