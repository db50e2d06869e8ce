"""Secret env end to end with real processes: a `hodei server` process and a worker
process (both logging at DEBUG to files), the `hodei` CLI in every output format and
`hodei-diagnose` in every report format. One test greps all of them, and the
database's events, outbox, jobs and logs, for the secret values: none is found."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet

from harness.waits import wait_for
from hodei.domain.jobs import JobState
from tests.integration.cli_process import assert_one_line_error, cli_env, hodei
from tests.integration.tokens import SERVER_TOKENS, make_token

pytestmark = pytest.mark.integration

SpawnWorker = Callable[..., Awaitable[Any]]

#: Given from the CLI's environment (`--secret-env TOKEN`): never in any argv.
FROM_ENV = "tok-3d9b1c77e0a4"
#: Given in argv (`--secret-env PASS=...`), as a user may.
IN_ARGV = "pw-5e8f20aa91"
SCRIPT = (
    'echo "token=$TOKEN pass=$PASS"; echo "$TOKEN" >&2; '
    f'test "$(printf %s "$TOKEN" | sha256sum | cut -c1-64)" = '
    f"{hashlib.sha256(FROM_ENV.encode()).hexdigest()}"
)


class ServerExited(AssertionError):
    """The server process ended before it said where it listens."""


@pytest.fixture
def server_process(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`python -m hodei.server` with a secret key, logging at DEBUG; (address, log)."""
    log = tmp_path / "server.log"
    env = cli_env(HODEI_SECRET_KEY=Fernet.generate_key().decode())
    argv = [sys.executable, "-m", "hodei.server", "--port", "0", "--database-url", db_url]
    argv += ["--log-file", str(log), "--log-level", "DEBUG"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def listening_port() -> str | None:
        match = re.search(
            r"listening on 127\.0\.0\.1:(\d+)", log.read_text() if log.exists() else ""
        )
        if match:
            return match.group(1)
        if proc.poll() is not None:
            raise ServerExited(f"server exited: {proc.stderr.read() if proc.stderr else ''!r}")
        return None

    try:
        port = wait_for(
            "the server to say where it listens",
            listening_port,
            lambda found: found is not None,
            timeout_s=30,
            poll_s=0.1,
            abort_on=(ServerExited,),
        )
        address = f"127.0.0.1:{port}"
        # Authentication is on: the worker and the CLI find these by the address.
        SERVER_TOKENS[address] = {
            role: asyncio.run(make_token(db_url, f"secret-test-{role}", role))
            for role in ("admin", "worker")
        }
        yield address, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_a_secret_is_in_no_log_output_report_or_event(
    server_process: tuple[str, Path],
    spawn_worker: SpawnWorker,
    db_url: str,
    tmp_path: Path,
) -> None:
    address, server_log = server_process
    worker = await spawn_worker(address)
    outputs: dict[str, str] = {}
    secret_args = ["--secret-env", "TOKEN", "--secret-env", f"PASS={IN_ARGV}"]
    from_env = {"TOKEN": FROM_ENV}

    for fmt in ("table", "json"):
        run = await hodei(
            "-o", fmt, "job", "run", *secret_args, "--shell", SCRIPT, server=address, env=from_env
        )
        assert run.returncode == 0, str(run)  # the job got the exact value
        outputs[f"job run -o {fmt}"] = run.stdout + run.stderr
    table_run = outputs["job run -o table"]
    assert "token=*** pass=***" in table_run and "\n***\n" in table_run

    submitted = await hodei(
        "-o", "json", "job", "submit", *secret_args, "--shell", SCRIPT, server=address, env=from_env
    )
    assert submitted.returncode == 0, str(submitted)
    outputs["job submit -o json"] = submitted.stdout + submitted.stderr
    job_id = re.search(r'"id": "([0-9a-f-]{36})"', submitted.stdout).group(1)  # type: ignore[union-attr]
    await worker.wait_log(r"job finished: SUCCEEDED", count=3, seconds=30)

    for fmt in ("table", "json"):
        for argv in (("job", "get", job_id), ("job", "list"), ("job", "logs", job_id)):
            result = await hodei("-o", fmt, *argv, server=address)
            assert result.returncode == 0, str(result)
            outputs[f"{' '.join(argv[:2])} -o {fmt}"] = result.stdout + result.stderr
    assert re.search(r"secret env: +PASS=\*\*\* TOKEN=\*\*\*\n", outputs["job get -o table"])
    assert '"TOKEN": "***"' in outputs["job get -o json"]
    assert JobState.SUCCEEDED.value in outputs["job list -o table"]

    for fmt in ("text", "md", "json"):
        report = tmp_path / f"diagnose.{fmt}"
        diagnose_argv = [
            *("-m", "hodei.diagnose.cli", "--database-url", db_url, "--server", address),
            *("--server-log", str(server_log), "--worker-log", str(worker.log_path)),
            *("--format", fmt, "--output", str(report)),
        ]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *diagnose_argv,
            env=cli_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        printed = out.decode() + err.decode()
        assert proc.returncode in (0, 1, 2), printed  # healthy, warnings or failures
        outputs[f"hodei-diagnose --format {fmt}"] = report.read_text() + printed

    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT 'domain_events', string_agg(payload::text, ' ') FROM domain_events "
            "UNION ALL SELECT 'outbox_events', string_agg(payload::text, ' ') FROM outbox_events "
            "UNION ALL SELECT 'job_logs', string_agg(line, ' ') FROM job_logs "
            "UNION ALL SELECT 'jobs (but the encrypted column)', "
            "string_agg((to_jsonb(j) - 'secret_env')::text, ' ') FROM jobs j "
            "UNION ALL SELECT 'jobs.secret_env', string_agg(encode(secret_env, 'escape'), ' ') "
            "FROM jobs"
        ).fetchall()
    outputs.update({f"database: {name}": text or "" for name, text in rows})
    outputs["server log"] = server_log.read_text()
    outputs["worker log"] = worker.log_path.read_text()
    assert "job finished" in outputs["worker log"] and "RunJob sent" in outputs["server log"]

    found = [
        f"{secret!r} in {place}"
        for place, text in outputs.items()
        for secret in (FROM_ENV, IN_ARGV)
        if secret in text
    ]
    assert not found, "; ".join(found)
    # The worker's INFO lines do not carry the job's command (it is logged at DEBUG).
    info = [line for line in outputs["worker log"].splitlines() if " INFO " in line]
    assert info and not [line for line in info if "sha256sum" in line]
    assert any("sha256sum" in line for line in outputs["worker log"].splitlines())


async def test_secret_env_from_an_unset_variable_is_a_one_line_error() -> None:
    result = await hodei("job", "submit", "--secret-env", "NOT_SET_ANYWHERE", "--", "true")
    assert_one_line_error(result, 2, "--secret-env NOT_SET_ANYWHERE: NOT_SET_ANYWHERE is not set")


async def test_a_name_in_env_and_secret_env_is_refused_without_a_server() -> None:
    result = await hodei(
        "job", "submit", "--env", "T=1", "--secret-env", f"T={IN_ARGV}", "--", "true"
    )
    assert_one_line_error(result, 2, "T given both in env and in secret_env")
    assert IN_ARGV not in result.stderr
