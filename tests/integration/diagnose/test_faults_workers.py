"""The fault suite, worker side: what the platform now tells the doctor (issue 14).

Each test breaks a real deployment (the in-process server with authentication on, real
worker processes) from outside only: a signal to a worker process, an SQL statement from
another connection, a worker started with a testing-only setting. It notes when the
fault became observable, runs the real `hodei-diagnose` until it names the fault
(fault_timing.named_within), then asserts the exact finding code, the root-cause
sentence and the exit code. A clean stop is the control: exit 0, nothing lost.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from harness.waits import wait_for_async
from tests.integration.diagnose.deployments import (
    job_state,
    queue_job,
    targets,
    wait_job,
    wait_ready_workers,
)
from tests.integration.diagnose.fault_timing import named_within

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

FAULTS_ON = {"HODEI_TESTING": "true"}


def sql(db_url: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


async def test_worker_sigkilled_mid_job_is_named_at_once(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server()
    workers = [spawn_worker(app.address, name=f"kill-{i}") for i in range(2)]
    await wait_ready_workers(db_url, 2)
    job_id = await queue_job(app.address, ["sleep", "60"], diag_tokens["admin"])
    await wait_job(db_url, job_id, ("RUNNING",))
    (row,) = await asyncio.to_thread(
        sql,
        db_url,
        "SELECT w.id::text, w.pid FROM jobs j JOIN workers w ON w.id = j.worker_id WHERE j.id = %s",
        job_id,
    )
    worker_id, pid = row
    victim = next(w for w in workers if w.pid == pid)
    os.kill(victim.pid, signal.SIGKILL)
    await asyncio.to_thread(victim.proc.wait, 5)
    observable_at = time.monotonic()

    run, seconds = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "WORKER_STREAM_CLOSED",
        fault="worker SIGKILLed mid-job",
        observable_at=observable_at,
    )

    assert run.code == 2, (run.failing(), run.stdout)
    assert run.report["root_cause"] == (
        f"1 worker(s) own 1 job(s) ({job_id[:8]}) with no live stream ({worker_id[:8]}): "
        "the worker died or lost its connection, and its jobs wait for its heartbeat deadline"
    )
    check = run.check("workers.stream")
    assert check["status"] == "FAIL"
    (line,) = check["evidence"]
    assert f"worker {worker_id} (kill-" in line and f"pid {pid}" in line
    assert f"{job_id} RUNNING" in line and "stream closed" in line
    # Named before the heartbeat-miss window (3 x 5 s) could have: the job is still its.
    assert await job_state(db_url, job_id) == "RUNNING"
    assert seconds < 15.0, seconds


async def test_worker_dropping_its_logs_is_named_without_canary(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server()
    spawn_worker(app.address, name="mute", env=FAULTS_ON | {"HODEI_FAULT_DROP_LOGS": "true"})
    await wait_ready_workers(db_url, 1)
    job_id = await queue_job(
        app.address, ["sh", "-c", "echo one; echo two >&2"], diag_tokens["admin"]
    )
    assert await wait_job(db_url, job_id, ("SUCCEEDED", "FAILED")) == "SUCCEEDED"
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "LOGS_LOST",
        fault="worker drops its logs (HODEI_FAULT_DROP_LOGS)",
        observable_at=observable_at,
    )

    assert run.code == 2, (run.failing(), run.stdout)
    assert run.report["root_cause"] == (
        f"worker mute read 2 lines for job {job_id}; 0 reached the server "
        "(1 attempt(s) with lost output)"
    )
    (line,) = run.check("attempts.output")["evidence"]
    assert f"read 2 line(s) (6 bytes) for job {job_id}" in line
    assert "0 reached the server" in line
    assert "--canary" not in " ".join(targets(db_url, app.address))


async def test_output_split_at_the_line_limit_is_not_reported_lost(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    """The control of the lost-output check: a 2.5 MiB line (split by the worker at its
    1 MiB limit, each piece one line on both sides) and a job still running are not
    reported."""
    app = await start_server()
    spawn_worker(app.address, name="big", env={"HODEI_SLOTS": "2"})
    await wait_ready_workers(db_url, 1)
    big = await queue_job(
        app.address,
        [
            "python3",
            "-c",
            "import sys; sys.stdout.write('x' * (2_621_440) + '\\n'); print('end')",
        ],
        diag_tokens["admin"],
    )
    running = await queue_job(
        app.address, ["sh", "-c", "echo started; sleep 60"], diag_tokens["admin"]
    )
    assert await wait_job(db_url, big, ("SUCCEEDED", "FAILED")) == "SUCCEEDED"
    await wait_job(db_url, running, ("RUNNING",))
    ((read, stored),) = await asyncio.to_thread(
        sql, db_url, "SELECT output_lines_read, attempt_lines FROM jobs WHERE id = %s", big
    )
    assert (read, stored) == (4, 4)  # 1 MiB + 1 MiB + 0.5 MiB + "end"

    run = await run_diagnose(*targets(db_url, app.address))

    check = run.check("attempts.output")
    assert check["status"] == "PASS", (check, run.stdout)
    assert check["observed"] == "1 finished attempt(s) measured, all output stored"
    assert run.code == 0, run.failing()


async def test_worker_clock_skew_is_named(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
) -> None:
    app = await start_server()
    spawn_worker(app.address, name="late", env=FAULTS_ON | {"HODEI_FAULT_CLOCK_OFFSET_S": "-30"})
    spawn_worker(app.address, name="on-time")
    await wait_ready_workers(db_url, 2)  # each Hello carried its clock
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "WORKER_CLOCK_SKEW",
        fault="worker clock 30 s behind (HODEI_FAULT_CLOCK_OFFSET_S)",
        observable_at=observable_at,
    )

    assert run.code == 1, (run.failing(), run.stdout)
    assert run.failing() == {"workers.clock": "WARN"}
    (line,) = run.check("workers.clock")["evidence"]
    # 30 s plus the message's transit time (a loaded machine: up to ~0.2 s).
    seen = re.search(r"\(late, pid \d+\): clock (\d+\.\d) s behind the database", line)
    assert seen is not None and 30.0 <= float(seen[1]) <= 30.5, line
    ((worker_id,),) = await asyncio.to_thread(
        sql, db_url, "SELECT id::text FROM workers WHERE name = 'late'"
    )
    assert run.report["root_cause"] == (
        f"1 worker clock(s) off by up to {seen[1]} s from the database's (limit 2.0 s; "
        f"{worker_id[:8]}): timestamps and deadlines between them cannot be compared"
    )


async def _finished_job(db_url: str, address: str, token: str) -> str:
    job_id = await queue_job(address, ["true"], token)
    assert await wait_job(db_url, job_id, ("SUCCEEDED", "FAILED")) == "SUCCEEDED"
    return job_id


async def test_stray_queue_row_is_repaired_with_a_trace(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server()
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    job_id = await _finished_job(db_url, app.address, diag_tokens["admin"])
    await asyncio.to_thread(sql, db_url, "INSERT INTO job_queue (job_id) VALUES (%s)", job_id)
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "QUEUE_ROWS_REPAIRED",
        fault="job_queue row put back for a SUCCEEDED job (idle worker)",
        observable_at=observable_at,
    )

    assert run.code == 1, (run.failing(), run.stdout)
    assert run.failing() == {"queue.repairs": "WARN"}
    assert run.report["root_cause"] == (
        f"repaired 1 stray queue row(s) in the last 60 min ({job_id[:8]}): job_queue rows "
        "were put back for jobs that were not PENDING"
    )
    (line,) = run.check("queue.repairs")["evidence"]
    assert line.startswith(f"stray_queue_row: job {job_id} was SUCCEEDED, row removed by recovery:")
    # Durable: the row is gone, the job untouched, the repair an event with its outbox row.
    rows = await asyncio.to_thread(
        sql,
        db_url,
        "SELECT (SELECT count(*) FROM job_queue), (SELECT state FROM jobs WHERE id = %s),"
        " (SELECT count(*) FROM outbox_events WHERE topic = 'job.Repaired' AND aggregate_id = %s)",
        job_id,
        job_id,
    )
    assert rows == [(0, "SUCCEEDED", 1)]


async def test_stray_queue_row_with_busy_workers_is_named_as_the_stray_row(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    """With every slot busy the dispatcher claims nothing; the repair still happens, so
    the row is named as what it is, not as a queue no worker serves."""
    app = await start_server()
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    job_id = await _finished_job(db_url, app.address, diag_tokens["admin"])
    busy = await queue_job(app.address, ["sleep", "60"], diag_tokens["admin"])
    await wait_job(db_url, busy, ("RUNNING",))
    await asyncio.to_thread(sql, db_url, "INSERT INTO job_queue (job_id) VALUES (%s)", job_id)
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        [*targets(db_url, app.address), "--threshold", "consistency_grace_s=0"],
        "QUEUE_ROWS_REPAIRED",
        fault="job_queue row put back for a SUCCEEDED job (busy worker)",
        observable_at=observable_at,
        check="queue.repairs",
    )

    repairs = run.check("queue.repairs")
    assert repairs["status"] == "WARN"
    assert repairs["observed"] == "repaired 1 stray queue row(s) in the last 60 min"
    assert any(job_id in e for e in repairs["evidence"])
    assert run.check("consistency.queue_not_pending")["status"] == "PASS"
    assert await job_state(db_url, busy) == "RUNNING"


async def test_worker_stopped_cleanly_is_not_lost(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server()
    stopping = spawn_worker(app.address, name="stopping")
    spawn_worker(app.address, name="staying")
    await wait_ready_workers(db_url, 2)
    await _finished_job(db_url, app.address, diag_tokens["admin"])
    stopping.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(stopping.proc.wait, 15) == 0

    run = await run_diagnose(*targets(db_url, app.address))

    assert run.code == 0, (run.failing(), run.stdout)
    assert run.failing() == {}
    assert run.check("workers.heartbeat")["observed"] == "all live workers heard from"
    rows = await asyncio.to_thread(
        sql, db_url, "SELECT state, server_id FROM workers WHERE name = 'stopping'"
    )
    assert rows == [("TERMINATED", None)]


async def test_worker_whose_stream_holder_vanished_is_named(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    """A worker row that says a server holds its stream, where that server has no live
    server_status (it was SIGKILLed, or its row is gone): no stream, named at once."""
    app = await start_server()
    spawn_worker(app.address, name="orphan")
    await wait_ready_workers(db_url, 1)
    job_id = await queue_job(app.address, ["sleep", "60"], diag_tokens["admin"])
    await wait_job(db_url, job_id, ("RUNNING",))
    ((worker_id,),) = await asyncio.to_thread(
        sql,
        db_url,
        "UPDATE workers SET server_id = 'vanished:1:dead' WHERE name = 'orphan' RETURNING id::text",
    )
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "WORKER_STREAM_CLOSED",
        fault="stream holder gone (workers.server_id of a server without status)",
        observable_at=observable_at,
    )

    assert run.code == 2, (run.failing(), run.stdout)
    assert run.report["root_cause_code"] == "WORKER_STREAM_CLOSED"
    (line,) = run.check("workers.stream")["evidence"]
    assert f"worker {worker_id} (orphan" in line
    assert "stream held by vanished:1:dead (unknown server)" in line
    assert f"{job_id} RUNNING" in line


async def test_worker_frozen_mid_job_is_named_within_one_miss_window(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    # SIGSTOP: the process and its TCP stream stay, only its heartbeats stop, so nothing
    # but silence shows it. The doctor's threshold is 3 missed 0.5 s heartbeats; the
    # server marks the worker LOST only after 12 (6 s), so that a doctor slow to start
    # on a loaded machine still finds it silent rather than already LOST (a WARN).
    app = await start_server(recovery={"heartbeat_interval": 0.5, "heartbeat_miss_limit": 12})
    workers = [spawn_worker(app.address, name=f"freeze-{i}") for i in range(2)]
    await wait_ready_workers(db_url, 2)
    job_id = await queue_job(app.address, ["sleep", "60"], diag_tokens["admin"])
    await wait_job(db_url, job_id, ("RUNNING",))
    ((pid,),) = await asyncio.to_thread(
        sql,
        db_url,
        "SELECT w.pid FROM jobs j JOIN workers w ON w.id = j.worker_id WHERE j.id = %s",
        job_id,
    )
    victim = next(w for w in workers if w.pid == pid)
    os.kill(victim.pid, signal.SIGSTOP)
    observable_at = time.monotonic()  # its next heartbeat is the first one missing

    run, _ = await named_within(
        run_diagnose,
        [*targets(db_url, app.address), "--threshold", "heartbeat_stale_s=1.5"],
        "WORKER_HEARTBEAT_STALE",
        fault="worker SIGSTOPped mid-job (frozen)",
        observable_at=observable_at,
        check="workers.heartbeat",
    )

    assert run.code == 2, (run.failing(), run.stdout)
    check = run.check("workers.heartbeat")
    assert check["status"] == "FAIL"
    assert any(str(victim.pid) in e for e in check["evidence"]), check["evidence"]
    # The other worker is alive: one frozen worker is not "no worker at all".
    assert run.check("workers.ready")["status"] == "PASS", run.check("workers.ready")


async def test_a_lost_worker_replaced_by_its_supervisor_is_history_not_a_warning(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    # `hodei up` (or systemd) restarts a killed worker under the same name. Once the lost
    # one holds no job, warning about it for the whole lost window cries wolf.
    app = await start_server(recovery={"heartbeat_interval": 0.5, "heartbeat_miss_limit": 3})
    first = spawn_worker(app.address, name="twin")
    await wait_ready_workers(db_url, 1)
    os.kill(first.pid, signal.SIGKILL)
    await asyncio.to_thread(first.proc.wait, 5)

    async def lost() -> int:
        rows = await asyncio.to_thread(
            sql, db_url, "SELECT count(*) FROM workers WHERE name = 'twin' AND state = 'LOST'"
        )
        return int(rows[0][0])

    await wait_for_async("the killed worker LOST", lost, lambda n: n == 1, 15)
    run = await run_diagnose(*targets(db_url, app.address))
    # Not yet replaced, and no other worker: named, and a failure.
    assert run.failing().get("workers.heartbeat") == "FAIL", run.failing()

    spawn_worker(app.address, name="twin")
    await wait_ready_workers(db_url, 1)
    run = await run_diagnose(*targets(db_url, app.address))

    assert run.code == 0, (run.failing(), run.stdout)
    check = run.check("workers.heartbeat")
    assert check["status"] == "PASS"
    assert any("replaced by live worker" in e for e in check["evidence"]), check["evidence"]
