"""The `hodei` CLI as a subprocess against a real server (in-process, real PostgreSQL)
and real worker processes: output, exit codes, and one-line errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harness.waits import wait_for_async
from hodei.client import HodeiClient, JobView
from hodei.domain.jobs import JobState
from tests.integration.cli_process import (
    assert_one_line_error,
    closed_port,
    finish,
    hodei,
    interrupt,
    start_cli,
)
from tests.integration.tokens import server_token

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[Any]]
SpawnWorker = Callable[..., Awaitable[Any]]
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def platform(start_server: StartServer, spawn_worker: SpawnWorker) -> str:
    """A server with one real worker (2 slots); returns its address."""
    app = await start_server(dispatcher={"poll_interval": 0.2})
    await spawn_worker(app.address, slots=2)
    address: str = app.address
    return address


async def wait_state(address: str, job_id: str, *states: JobState, seconds: float = 15) -> JobView:
    async with HodeiClient(address, token=server_token(address)) as client:
        return await wait_for_async(
            f"job {job_id} to be {' or '.join(s.name for s in states)}",
            lambda: client.get_job(job_id),
            lambda job: job.state in states,
            timeout_s=seconds,
            describe=lambda job: job.state,
        )


async def test_job_run_prints_exact_lines_and_exits_with_the_job_code(platform: str) -> None:
    script = "echo out1; echo err1 >&2; echo out2; printf 'no newline'; exit 7"
    result = await hodei("job", "run", "--", "sh", "-c", script, server=platform)
    assert result.returncode == 7, str(result)
    assert result.stdout == "out1\nout2\nno newline\n"
    assert result.stderr == "err1\n"


async def test_job_run_success_env_workdir_and_json_events(platform: str, tmp_path: Any) -> None:
    result = await hodei(
        "--output",
        "json",
        "job",
        "run",
        "--env",
        "GREETING=hi there",
        "--workdir",
        str(tmp_path),
        "--name",
        "json-run",
        "--",
        "sh",
        "-c",
        'echo "$GREETING"; pwd',
        server=platform,
    )
    assert result.returncode == 0, str(result)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    logs = [e for e in events if e["type"] == "log"]
    assert [e["line"] for e in logs] == ["hi there", str(tmp_path)]
    assert [e["sequence"] for e in logs] == [1, 2]
    assert events[-1]["type"] == "job"
    job = events[-1]["job"]
    assert (job["state"], job["exit_code"], job["name"]) == ("SUCCEEDED", 0, "json-run")
    assert job["env"] == {"GREETING": "hi there"}


async def test_job_run_timeout_and_unstartable_command_codes(platform: str) -> None:
    timed_out = await hodei("job", "run", "--timeout", "1", "--", "sleep", "30", server=platform)
    assert timed_out.returncode == 124, str(timed_out)
    assert "TIMED_OUT" in timed_out.stderr and "Traceback" not in timed_out.stderr
    missing = await hodei("job", "run", "--", "/nonexistent/command", server=platform)
    assert missing.returncode == 126, str(missing)
    assert "FAILED" in missing.stderr and "/nonexistent/command" in missing.stderr


async def test_a_correlation_id_given_on_the_command_line_is_the_jobs(platform: str) -> None:
    submitted = await hodei(
        "job", "submit", "--correlation-id", "order-4711", "--", "true", server=platform
    )
    assert submitted.returncode == 0, str(submitted)
    got = await hodei("-o", "json", "job", "get", submitted.stdout.strip(), server=platform)
    assert json.loads(got.stdout)["correlation_id"] == "order-4711"
    too_long = await hodei(
        "job", "submit", "--correlation-id", "x" * 201, "--", "true", server=platform
    )
    assert too_long.returncode == 2, str(too_long)
    assert too_long.stderr == "hodei: error: correlation_id is longer than 200 characters\n"


async def test_submit_get_list_and_logs(platform: str) -> None:
    submitted = await hodei("job", "submit", "--shell", "echo a; echo b >&2", server=platform)
    assert submitted.returncode == 0, str(submitted)
    job_id = submitted.stdout.strip()
    assert len(job_id) == 36 and submitted.stdout.count("\n") == 1
    await wait_state(platform, job_id, JobState.SUCCEEDED)

    got = await hodei("-o", "json", "job", "get", job_id, server=platform)
    assert got.returncode == 0, str(got)
    data = json.loads(got.stdout)
    assert data["id"] == job_id and data["state"] == "SUCCEEDED"
    assert data["command"] == ["/bin/sh", "-c", "echo a; echo b >&2"]
    table = await hodei("job", "get", job_id, server=platform)
    assert "state:" in table.stdout and "SUCCEEDED" in table.stdout

    logs = await hodei("job", "logs", job_id, server=platform)
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, "a\n", "b\n")
    followed = await hodei("job", "logs", "-f", job_id, server=platform)
    assert (followed.returncode, followed.stdout, followed.stderr) == (0, "a\n", "b\n")

    listed = await hodei("job", "list", "--state", "succeeded", "-o", "json", server=platform)
    assert listed.returncode == 0, str(listed)
    rows = json.loads(listed.stdout)
    assert job_id in [r["id"] for r in rows] and {r["state"] for r in rows} == {"SUCCEEDED"}
    none_pending = await hodei("job", "list", "--state", "PENDING", "-o", "json", server=platform)
    assert json.loads(none_pending.stdout) == []
    table = await hodei("job", "list", server=platform)
    assert table.stdout.splitlines()[0].split()[:3] == ["ID", "NAME", "STATE"]
    assert job_id in table.stdout


async def test_logs_follow_streams_a_running_job_to_its_end(platform: str) -> None:
    submitted = await hodei(
        "job",
        "submit",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done",
        server=platform,
    )
    job_id = submitted.stdout.strip()
    await wait_state(platform, job_id, JobState.RUNNING, JobState.SUCCEEDED)
    followed = await hodei("job", "logs", "--follow", job_id, server=platform)
    assert followed.returncode == 0, str(followed)
    assert followed.stdout.splitlines() == [f"line{i}" for i in range(1, 6)]


async def test_cancel_a_running_job_then_cancel_again_is_refused(platform: str) -> None:
    submitted = await hodei("job", "submit", "--", "sleep", "60", server=platform)
    job_id = submitted.stdout.strip()
    await wait_state(platform, job_id, JobState.RUNNING)
    cancelled = await hodei("job", "cancel", "--force", job_id, server=platform)
    assert cancelled.returncode == 0, str(cancelled)
    # What happened, not the state before it: the worker has yet to stop the job.
    assert cancelled.stdout.startswith(f"job {job_id}: cancel requested; it was RUNNING")
    job = await wait_state(platform, job_id, JobState.CANCELLED)
    assert job.state == JobState.CANCELLED
    again = await hodei("job", "cancel", job_id, server=platform)
    assert_one_line_error(again, 5, "CANCELLED")


async def test_ctrl_c_during_job_run_exits_130_and_cancels_the_job(platform: str) -> None:
    argv = ["job", "run", "--", "sh", "-c", "echo started; sleep 60"]
    proc = await start_cli(*argv, server=platform)
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 15)
    assert first == b"started\n"
    await interrupt(proc)
    result = await finish(proc, argv, 15)
    assert result.returncode == 130, str(result)
    assert "Traceback" not in result.stderr
    async with HodeiClient(platform, token=server_token(platform)) as client:
        jobs = await client.list_jobs(limit=1)
    await wait_state(platform, jobs[0].id, JobState.CANCELLED)


async def test_ctrl_c_during_logs_follow_exits_130(platform: str) -> None:
    submitted = await hodei("job", "submit", "--shell", "echo started; sleep 60", server=platform)
    job_id = submitted.stdout.strip()
    await wait_state(platform, job_id, JobState.RUNNING)
    argv = ["job", "logs", "-f", job_id]
    proc = await start_cli(*argv, server=platform)
    assert proc.stdout is not None
    assert await asyncio.wait_for(proc.stdout.readline(), 15) == b"started\n"
    await interrupt(proc)
    result = await finish(proc, argv, 15)
    assert result.returncode == 130, str(result)
    assert "Traceback" not in result.stderr
    # Following is read-only: the job keeps running.
    assert (await wait_state(platform, job_id, JobState.RUNNING)).state == JobState.RUNNING


async def test_ctrl_c_at_any_moment_never_prints_a_traceback() -> None:
    # Interrupted while the CLI is still importing, or while it waits for a server.
    for delay in (0.4, 0.8, 1.5):
        argv = ["job", "run", "--", "true"]
        proc = await start_cli(*argv, server=f"127.0.0.1:{closed_port()}")
        await asyncio.sleep(delay)
        await interrupt(proc)
        result = await finish(proc, argv, 20)
        if "init_import_site" in result.stderr:
            continue  # CPython itself was still starting: before any hodei code ran
        assert "Traceback" not in result.stderr, str(result)
        # -2 (killed by SIGINT; a shell shows it as 130 too) when the signal lands
        # while the interpreter is already exiting.
        assert result.returncode in (130, -2, 3), str(result)


@pytest.mark.parametrize(
    "argv",
    [
        ["job", "get", UNKNOWN_ID],
        ["job", "cancel", UNKNOWN_ID],
        ["job", "logs", UNKNOWN_ID],
        ["job", "logs", "-f", UNKNOWN_ID],
    ],
)
async def test_unknown_job_id_is_one_line_and_exit_4(platform: str, argv: list[str]) -> None:
    assert_one_line_error(await hodei(*argv, server=platform), 4, UNKNOWN_ID)


async def test_malformed_job_id_is_invalid_input(platform: str) -> None:
    assert_one_line_error(await hodei("job", "get", "not-a-uuid", server=platform), 2, "not-a-uuid")


async def test_workers_queue_and_version(platform: str) -> None:
    workers = await hodei("-o", "json", "workers", server=platform)
    assert workers.returncode == 0, str(workers)
    rows = json.loads(workers.stdout)
    assert len(rows) == 1 and rows[0]["connected"] and rows[0]["state"] == "READY"
    assert rows[0]["slots"] == 2
    table = await hodei("workers", server=platform)
    assert rows[0]["id"] in table.stdout and "READY" in table.stdout

    queue = await hodei("queue", "-o", "json", server=platform)
    assert queue.returncode == 0, str(queue)
    assert json.loads(queue.stdout)["depth"] == 0

    version = await hodei("version", "-o", "json", server=platform)
    info = json.loads(version.stdout)
    assert info["client_version"] and info["server"]["dispatcher_enabled"] is True


async def test_unreachable_server_is_one_line_and_exit_3() -> None:
    address = f"127.0.0.1:{closed_port()}"
    for argv in (["job", "list"], ["workers"], ["queue"]):
        result = await hodei(*argv, server=address, seconds=20)
        assert_one_line_error(result, 3, f"cannot reach the Hodei server at {address}")
    # A submission is retried first (HODEI_SUBMIT_RETRY, 30 s by default), then says so.
    for argv in (["job", "run", "--", "true"], ["job", "submit", "--", "true"]):
        result = await hodei(*argv, server=address, seconds=20, env={"HODEI_SUBMIT_RETRY": "1"})
        assert_one_line_error(result, 3, f"cannot reach the Hodei server at {address}")
        assert "; gave up after " in result.stderr and " tries in " in result.stderr


async def test_submit_with_an_idempotency_key_queues_once(platform: str) -> None:
    argv = ["job", "submit", "--idempotency-key", "nightly-2026-12-01", "--name", "n", "--"]
    first = await hodei(*argv, "sleep", "30", server=platform)
    again = await hodei(*argv, "sleep", "30", server=platform)
    assert first.returncode == 0 and again.returncode == 0, f"{first}\n{again}"
    assert again.stdout == first.stdout and len(first.stdout.strip()) == 36
    other = await hodei(*argv, "sleep", "31", server=platform)
    assert_one_line_error(
        other, 5, "idempotency key 'nightly-2026-12-01' was used for a different job spec"
    )
    async with HodeiClient(platform, token=server_token(platform)) as client:
        jobs = await client.list_jobs()
        assert [j.id for j in jobs] == [first.stdout.strip()]
        await client.cancel_job(jobs[0].id, force=True)


async def test_run_with_an_idempotency_key_follows_the_job_already_queued(platform: str) -> None:
    argv = ["job", "run", "--idempotency-key", "run-once", "--", "sh", "-c", "echo once; exit 3"]
    first = await hodei(*argv, server=platform)
    again = await hodei(*argv, server=platform)
    for result in (first, again):
        assert result.returncode == 3 and result.stdout == "once\n", str(result)
    async with HodeiClient(platform, token=server_token(platform)) as client:
        assert len(await client.list_jobs()) == 1


@pytest.mark.parametrize(
    ("argv", "contains"),
    [
        (["job", "run"], "command must not be empty: hodei job run -- CMD"),
        (
            ["job", "submit"],
            "command must not be empty: hodei job submit -- CMD ARGS..., "
            "or hodei job submit --shell 'SCRIPT'",
        ),
        (["job", "run", "--"], "command must not be empty"),
        (["job", "submit", "--", ""], "command must not be empty"),
        (["job", "run", "--timeout", "-5", "--", "true"], "--timeout"),
        (["job", "run", "--timeout", "abc", "--", "true"], "--timeout"),
        (["job", "run", "--env", "NOVALUE", "--", "true"], "--env 'NOVALUE'"),
        (["job", "run", "--env", "=x", "--", "true"], "--env '=x'"),
        (["job", "run", "--shell", "echo", "--", "true"], "not both"),
        (["job", "list", "--state", "BOGUS"], "unknown job state 'BOGUS'"),
        (["job", "list", "--limit", "0"], "--limit"),
        (["job", "frobnicate"], "invalid choice"),
        (["--output", "xml", "queue"], "invalid choice"),
        (
            ["job", "submit", "--idempotency-key", "two words", "--", "true"],
            "idempotency key has the character ' '",
        ),
        (
            ["job", "run", "--idempotency-key", "k" * 129, "--", "true"],
            "idempotency key is 129 characters long; at most 128",
        ),
        (["job", "submit", "--idempotency-key", "", "--", "true"], "must not be empty"),
    ],
)
async def test_invalid_input_is_one_line_and_exit_2(argv: list[str], contains: str) -> None:
    # A reachable server is not even needed: input is checked before any call.
    result = await hodei(*argv, server=f"127.0.0.1:{closed_port()}")
    assert_one_line_error(result, 2, contains)


async def test_oversized_env_is_refused_before_queueing(platform: str) -> None:
    big = "X=" + "y" * (70 * 1024)
    result = await hodei("job", "run", "--env", big, "--", "true", server=platform)
    assert_one_line_error(result, 2, "env is")
    async with HodeiClient(platform, token=server_token(platform)) as client:
        assert await client.list_jobs() == []


async def test_db_migrate_reports_the_version_and_a_bad_url(db_url: str) -> None:
    from hodei.db.migrate import latest_version

    done = await hodei("db", "migrate", "--database-url", db_url)
    assert done.returncode == 0, str(done)
    assert done.stdout.strip() == f"database already at schema version {latest_version()}"
    as_json = await hodei("-o", "json", "db", "migrate", "--database-url", db_url)
    assert json.loads(as_json.stdout) == {"applied": [], "schema_version": latest_version()}
    bad = f"postgresql://postgres:secret@127.0.0.1:{closed_port()}/nope"
    failed = await hodei("db", "migrate", "--database-url", bad)
    assert_one_line_error(failed, 3, "cannot migrate the database")
    assert "secret" not in failed.stderr
