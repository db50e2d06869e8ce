"""Run the `hodei` CLI as a real subprocess from async tests (the server under test
runs in the test's event loop, so the CLI must not block it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.launchers.base import ANY_METRICS_PORT, free_port
from tests.integration.tokens import server_token

_REPO = Path(__file__).resolve().parents[2]


@dataclass
class CliResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"`hodei {' '.join(self.argv)}` exited {self.returncode}\n"
            f"stdout: {self.stdout!r}\nstderr: {self.stderr!r}"
        )


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
    env["PYTHONPATH"] = str(_REPO)
    # The servers and workers these commands start (`hodei server`, `hodei up`...).
    env.update(ANY_METRICS_PORT)
    env.update(extra)
    return env


async def start_cli(
    *argv: str, server: str | None = None, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """`env`: HODEI_* variables for this run (the test's own are not passed on). With
    `server`, the admin token of that in-process server unless `env` names one."""
    token = server_token(server) if server else ""
    base = {"HODEI_SERVER_ADDRESS": server} if server else {}
    if token:
        base["HODEI_TOKEN"] = token
    env = cli_env(**{**base, **(env or {})})
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hodei.cli",
        *argv,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(proc: asyncio.subprocess.Process, argv: list[str], seconds: float) -> CliResult:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"`hodei {' '.join(argv)}` did not exit within {seconds} s; "
            f"stdout {out.decode()!r} stderr {err.decode()!r}"
        ) from None
    assert proc.returncode is not None
    return CliResult(argv, proc.returncode, out.decode(), err.decode())


async def hodei(
    *argv: str, server: str | None = None, seconds: float = 30.0, env: dict[str, str] | None = None
) -> CliResult:
    proc = await start_cli(*argv, server=server, env=env)
    return await finish(proc, list(argv), seconds)


async def interrupt(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have finished already
        proc.send_signal(signal.SIGINT)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    return free_port()


def assert_one_line_error(result: CliResult, code: int, contains: str) -> None:
    assert result.returncode == code, str(result)
    assert "Traceback" not in result.stderr, str(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, str(result)
    assert lines[0].startswith("hodei: error: "), str(result)
    assert contains in lines[0], str(result)
