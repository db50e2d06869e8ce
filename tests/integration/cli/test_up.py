"""`hodei up` as a real process: embedded PostgreSQL in a temp data dir, the server on
a free port, one local worker; a job runs against it; SIGINT stops it all with 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.launchers.base import ANY_METRICS_PORT
from harness.processes import alive, children, processes_mentioning
from tests.integration.cli_process import assert_one_line_error, closed_port, hodei, start_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_hodei_up_runs_a_job_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    # Any free /metrics ports: the defaults (9464, 9465) may be taken by a parallel test.
    argv = ["up", "--data-dir", str(tmp_path / "pg"), "--port", "0", "--workers", "1"]
    argv += ["--metrics-port", "0", "--worker-metrics-port", "0"]
    proc = await start_cli(*argv)
    assert proc.stdout is not None and proc.stderr is not None
    stderr_chunks: list[bytes] = []

    async def drain_stderr() -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            stderr_chunks.append(chunk)

    drainer = asyncio.create_task(drain_stderr())
    up_children: list[int] = []
    try:
        banner = b""
        while b"Press Ctrl-C to stop." not in banner:
            line = await asyncio.wait_for(proc.stdout.readline(), 90)
            assert line, f"hodei up exited early: {b''.join(stderr_chunks).decode()[-2000:]}"
            banner += line
        match = re.search(rb"Hodei is up on (127\.0\.0\.1:\d+)", banner)
        assert match, banner
        address = match.group(1).decode()
        assert f"hodei --server {address} job run -- echo hello".encode() in banner
        assert b"embedded PostgreSQL in " + str(tmp_path / "pg").encode() in banner
        up_children = children(proc.pid)
        # Tokens on: an admin token for the CLI and a worker token for its workers, in a
        # file only its owner may read, where the CLI finds it (the data dir).
        credentials = tmp_path / "pg" / "hodei-credentials.json"
        assert str(credentials).encode() in banner
        assert credentials.stat().st_mode & 0o777 == 0o600
        assert set(json.loads(credentials.read_text())) == {"admin", "worker"}
        cli_env = {"HODEI_DATA_DIR": str(tmp_path / "pg")}

        result = await hodei("job", "run", "--", "echo", "hi", server=address, env=cli_env)
        assert (result.returncode, result.stdout, result.stderr) == (0, "hi\n", ""), str(result)
        workers = await hodei("workers", server=address, env=cli_env)
        assert "up-1" in workers.stdout and "READY" in workers.stdout
        refused = await hodei("workers", server=address)  # another data dir: no token
        assert_one_line_error(refused, 6, "not authenticated: no token")

        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 60)
        await asyncio.wait_for(drainer, 10)
        stderr = b"".join(stderr_chunks).decode(errors="replace")
        assert code == 0, stderr[-3000:]
        assert "Traceback" not in stderr
        assert " ERROR " not in stderr, stderr[-3000:]
        # Its worker and the embedded PostgreSQL are gone with it.
        await asyncio.sleep(0.5)
        running = [pid for pid in up_children if alive(pid)]
        assert not running, f"children {running} of hodei up still running"
        assert not processes_mentioning(str(tmp_path / "pg")), "embedded PostgreSQL left running"
        unreachable = await hodei("queue", server=address)
        assert unreachable.returncode == 3, str(unreachable)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for pid in up_children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        drainer.cancel()


def test_quickstart_uses_the_default_data_dir_of_hodei_up_and_names_its_log(
    tmp_path: Path,
) -> None:
    # XDG_DATA_HOME moves the per-user data dir (the default of `hodei up`) into tmp_path.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HODEI_", "XDG_"))}
    env |= {
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "HODEI_QUICKSTART_PORT": str(closed_port()),
        "HODEI_QUICKSTART_VENV": sys.prefix,
        "TMPDIR": str(tmp_path),
        **ANY_METRICS_PORT,
    }
    script = Path(__file__).resolve().parents[3] / "scripts" / "quickstart.sh"
    ran = subprocess.run(
        ["bash", str(script), "--", "echo", "quick"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ran.returncode == 0, f"stdout: {ran.stdout}\nstderr: {ran.stderr}"
    assert ran.stdout.startswith("quick\n"), ran.stdout
    named = re.findall(r"its log: (\S+)", ran.stderr)
    assert len(named) == 2 and named[0] == named[1], ran.stderr  # said at start and end
    log = Path(named[0])
    assert log.parent == tmp_path and log.is_file(), named
    default_dir = tmp_path / "xdg" / "hodei" / "pgdata"
    assert f"embedded PostgreSQL in {default_dir}\n" in log.read_text(), log.read_text()
    assert not processes_mentioning(str(default_dir)), "embedded PostgreSQL left running"


async def test_a_worker_that_cannot_start_stops_hodei_up_with_one_line(tmp_path: Path) -> None:
    # Another program holds the second worker's /metrics port: that worker exits at
    # start every time, so `hodei up` gives up instead of restarting it forever.
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = taken.getsockname()[1]
        result = await hodei(
            "up",
            "--data-dir",
            str(tmp_path / "pg"),
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--workers",
            "2",
            "--worker-metrics-port",
            str(held - 1),
            seconds=120,
        )
    assert result.returncode == 3, str(result)
    assert "hodei: error: local worker up-2 exited with 3 within 10 s of its start 3 times" in (
        result.stderr
    ), result.stderr
    assert result.stderr.count("restarting it") == 2, result.stderr
    assert "Traceback" not in result.stderr


async def test_worker_metrics_ports_beyond_65535_are_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    argv = ["up", "--data-dir", str(tmp_path / "pg"), "--port", "0", "--workers", "2"]
    result = await hodei(*argv, "--worker-metrics-port", "65535", seconds=60)
    assert_one_line_error(
        result,
        2,
        "2 local workers need /metrics ports 65535-65536, beyond 65535: lower "
        "--worker-metrics-port (HODEI_WORKER_METRICS_PORT), or 0 for any free port",
    )
