"""Real server (in process) + real worker processes (`python -m hodei.worker`):
jobs from QueueJob to a final state, with their output in job_logs."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from harness.processes import wait_gone_async
from harness.waits import wait_for_async, wait_until_async
from hodei.api.v1 import common_pb2, jobs_pb2
from hodei.client import HodeiClient
from tests.integration.conftest import SpawnWorker
from tests.integration.tokens import server_token
from tests.integration.worker.db_rows import job_logs, worker_events, worker_row

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[Any]]
S = common_pb2


def read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


async def wait_file(path: Path, seconds: float = 10.0) -> str:
    """Wait until a job wrote `path` (small files written by the test's own jobs)."""
    return str(await wait_until_async(f"{path} to be written", lambda: read_text(path), seconds))


async def test_job_succeeds_with_exact_stdout_and_stderr_lines(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, db_url: str
) -> None:
    app = await start_server()
    worker = await spawn_worker(app.address)
    stubs = stubs_for(app.address)
    script = (
        "echo 'line one'; echo 'err one' >&2; printf 'caf\\351 bytes\\n'; "
        "echo \"env=$HODEI_TEST_VALUE\"; echo 'err two' >&2; printf 'last without newline'"
    )
    job = await stubs.queue(["/bin/sh", "-c", script], env={"HODEI_TEST_VALUE": "v1"})
    done = await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=15)
    assert done.has_exit_code and done.exit_code == 0
    assert done.attempts == 1
    assert done.worker_id == await worker.worker_id()
    logs = await job_logs(db_url, job.id)
    assert [line for _, err, line in logs if not err] == [
        "line one",
        "caf\ufffd bytes",
        "env=v1",
        "last without newline",
    ]
    assert [line for _, err, line in logs if err] == ["err one", "err two"]
    assert {attempt for attempt, _, _ in logs} == {1}
    state, running = await worker_row(db_url, await worker.worker_id())
    assert (state, running) == ("READY", 0)
    assert worker.error_lines() == []


async def test_a_job_is_told_its_id_attempt_and_correlation_id(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, db_url: str
) -> None:
    # A job that must not act twice (the chaos suite's ledger) tags its work with these;
    # the spec's own env cannot fake them.
    app = await start_server()
    await spawn_worker(app.address)
    stubs = stubs_for(app.address)
    script = 'echo "$HODEI_JOB_ID $HODEI_JOB_ATTEMPT $HODEI_CORRELATION_ID"'
    job = await stubs.queue(
        ["/bin/sh", "-c", script], env={"HODEI_JOB_ID": "forged", "HODEI_JOB_ATTEMPT": "9"}
    )
    await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=15)
    logs = await job_logs(db_url, job.id)
    assert [line for _, _, line in logs] == [f"{job.id} 1 {job.correlation_id}"]


async def test_a_job_inherits_no_descriptor_and_no_ignored_sigpipe_from_the_worker(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, db_url: str
) -> None:
    # The worker spawns jobs without closing its descriptors (hodei.worker.spawn): its
    # gRPC sockets, pollers and log file must all be close-on-exec.
    app = await start_server()
    await spawn_worker(app.address)
    stubs = stubs_for(app.address)
    job = await stubs.queue(["ls", "/proc/self/fd"])
    await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=15)
    # ls's own directory handle is 3: anything inherited would push it further.
    assert {line for _, _, line in await job_logs(db_url, job.id)} <= {"0", "1", "2", "3"}
    job = await stubs.queue(["grep", "SigIgn", "/proc/self/status"])
    await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=15)
    ((_, _, line),) = await job_logs(db_url, job.id)
    assert not int(line.split()[1], 16) & (1 << (signal.SIGPIPE - 1))


async def test_failing_exit_code_is_failed_with_the_code(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, db_url: str
) -> None:
    app = await start_server()
    worker = await spawn_worker(app.address)
    stubs = stubs_for(app.address)
    job = await stubs.queue(["/bin/sh", "-c", "echo about to fail; exit 3"])
    done = await stubs.wait_state(job.id, S.JOB_STATE_FAILED, seconds=15)
    assert done.has_exit_code and done.exit_code == 3
    assert await job_logs(db_url, job.id) == [(1, False, "about to fail")]
    missing = await stubs.queue(["/no/such/program"], max_attempts=1)
    failed = await stubs.wait_state(missing.id, S.JOB_STATE_FAILED, seconds=15)
    assert not failed.has_exit_code and "cannot start '/no/such/program'" in failed.error
    assert worker.error_lines() == []


async def test_timeout_is_timed_out_and_kills_the_process_group(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, tmp_path: Path
) -> None:
    app = await start_server()
    await spawn_worker(app.address, worker={"kill_grace": 1.0})
    stubs = stubs_for(app.address)
    pidfile = tmp_path / "grandchild.pid"
    job = await stubs.queue(
        ["/bin/sh", "-c", f"sleep 100 & echo $! > {pidfile}; echo started; wait"],
        timeout_seconds=1.0,
    )
    grandchild = int(await wait_file(pidfile))
    done = await stubs.wait_state(job.id, S.JOB_STATE_TIMED_OUT, seconds=15)
    assert "timed out" in done.error
    await wait_gone_async(grandchild)  # the grandchild goes with the timeout


async def test_cancel_running_job_is_cancelled_and_the_processes_are_gone(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, tmp_path: Path
) -> None:
    app = await start_server()
    worker = await spawn_worker(app.address)
    stubs = stubs_for(app.address)
    pidfile = tmp_path / "pids"
    job = await stubs.queue(["/bin/sh", "-c", f"sleep 100 & echo $$ $! > {pidfile}; wait"])
    await stubs.wait_state(job.id, S.JOB_STATE_RUNNING, seconds=15)
    shell, grandchild = (int(p) for p in (await wait_file(pidfile)).split())
    await stubs.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id, reason="test cancel"))
    done = await stubs.wait_state(job.id, S.JOB_STATE_CANCELLED, seconds=15)
    assert done.state == S.JOB_STATE_CANCELLED
    await wait_gone_async(shell)
    await wait_gone_async(grandchild)
    assert worker.error_lines() == []


async def test_fault_drop_logs_runs_the_job_but_streams_nothing(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, db_url: str
) -> None:
    app = await start_server()
    worker = await spawn_worker(app.address, faults={"testing": True, "drop_logs": True})
    stubs = stubs_for(app.address)
    job = await stubs.queue(["/bin/sh", "-c", "echo you will not see me"])
    await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=15)
    assert await job_logs(db_url, job.id) == []
    assert "FAULT INJECTION: fault_drop_logs is on" in worker.log_text()


async def test_slots_run_jobs_concurrently(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, tmp_path: Path
) -> None:
    app = await start_server()
    await spawn_worker(app.address, slots=2)
    stubs = stubs_for(app.address)
    # Each job waits for the other's marker: they finish only if both run at once.
    a, b = tmp_path / "a", tmp_path / "b"
    wait_for = "for i in $(seq 1 100); do [ -e {0} ] && exit 0; sleep 0.05; done; exit 7"
    job_a = await stubs.queue(["/bin/sh", "-c", f"touch {a}; " + wait_for.format(b)])
    job_b = await stubs.queue(["/bin/sh", "-c", f"touch {b}; " + wait_for.format(a)])
    for job in (job_a, job_b):
        done = await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=20)
        assert done.exit_code == 0


async def test_a_worker_start_prints_no_runtime_warning(
    start_server: StartServer, spawn_worker: SpawnWorker, tmp_path: Path
) -> None:
    """The job guard runs as `python -m hodei.worker.guard`; the worker's stderr (which
    the guard shares) carries no runpy RuntimeWarning about it, nor any other warning."""
    app = await start_server()
    worker = await spawn_worker(app.address)
    assert await worker.stop(seconds=20) == 0  # the guard exits before the worker does
    stderr = (tmp_path / "worker-1.stderr").read_text()
    assert "Warning" not in stderr, stderr
    assert "worker stopped" in worker.log_text()


async def test_sigterm_lets_the_running_job_finish_then_exits(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, db_url: str
) -> None:
    app = await start_server()
    worker = await spawn_worker(app.address)
    stubs = stubs_for(app.address)
    job = await stubs.queue(["/bin/sh", "-c", "sleep 1; echo finished"])
    await stubs.wait_state(job.id, S.JOB_STATE_RUNNING, seconds=15)
    code = await worker.stop(seconds=20)
    assert code == 0
    done = await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=5)
    assert done.exit_code == 0
    assert await job_logs(db_url, job.id) == [(1, False, "finished")]
    assert "worker stopped" in worker.log_text()
    assert worker.error_lines() == []


async def test_shutdown_grace_over_hands_the_job_back_for_a_retry(
    start_server: StartServer,
    spawn_worker: SpawnWorker,
    stubs_for: Any,
    tmp_path: Path,
) -> None:
    app = await start_server()
    worker = await spawn_worker(app.address, worker={"shutdown_grace": 0.5, "kill_grace": 0.5})
    stubs = stubs_for(app.address)
    pidfile = tmp_path / "pid"
    job = await stubs.queue(["/bin/sh", "-c", f"echo $$ > {pidfile}; exec sleep 100"])
    await stubs.wait_state(job.id, S.JOB_STATE_RUNNING, seconds=15)
    pid = int(await wait_file(pidfile))
    t0 = time.monotonic()
    assert await worker.stop(seconds=15) == 0
    # Requeued at once (not after the heartbeat deadline), the attempt counted.
    back = await stubs.wait_state(job.id, S.JOB_STATE_PENDING, seconds=5)
    assert time.monotonic() - t0 < 8
    assert back.attempts == 1
    await wait_gone_async(pid)
    assert "handed back to the server" in worker.log_text()
    # A new worker finishes it.
    await spawn_worker(app.address)
    done = await stubs.wait_state(job.id, S.JOB_STATE_RUNNING, seconds=15)
    assert done.attempts == 2


async def test_a_worker_stopped_by_sigterm_drains_then_is_terminated_never_lost(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Any, db_url: str
) -> None:
    # Short liveness (LOST after ~0.6 s of silence), so that a stopped worker left to the
    # recovery loop would turn LOST within the test.
    app = await start_server(
        recovery={"heartbeat_interval": 0.2, "heartbeat_miss_limit": 3, "reaper_interval": 0.1}
    )
    worker = await spawn_worker(app.address, worker={"shutdown_grace": 10})
    worker_id = await worker.worker_id()
    stubs = stubs_for(app.address)
    job = await stubs.queue(["/bin/sh", "-c", "sleep 1; echo done"])
    await stubs.wait_state(job.id, S.JOB_STATE_RUNNING, seconds=15)
    worker.kill(signal.SIGTERM)  # one signal: the graceful stop
    # While its job runs, the server knows it is stopping and gives it no new job.
    draining = await wait_for_async(
        "the worker row to be DRAINING",
        lambda: worker_row(db_url, worker_id),
        lambda row: row[0] == "DRAINING",
        timeout_s=10,
    )
    assert draining == ("DRAINING", 1)
    done = await stubs.wait_state(job.id, S.JOB_STATE_SUCCEEDED, seconds=15)
    assert done.attempts == 1
    assert await worker.wait_exit(15) == 0
    assert await worker_row(db_url, worker_id) == ("TERMINATED", 0)
    # Well past the miss window: still TERMINATED, and never LOST.
    await asyncio.sleep(1.5)
    assert (await worker_row(db_url, worker_id))[0] == "TERMINATED"
    events = await worker_events(db_url, worker_id)
    assert events[-2:] == ["WorkerDraining", "WorkerTerminated"], events
    assert "WorkerLost" not in events
    async with HodeiClient(app.address, token=server_token(app.address)) as client:
        listed = await client.list_workers(include_gone=True)
    assert [str(w.state) for w in listed if w.id == worker_id] == ["TERMINATED"]
