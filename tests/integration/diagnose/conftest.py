"""Fixtures for hodei-diagnose against real deployments: an in-process server (the
shared `start_server` fixture, here with authentication on), real worker processes, and
the real CLI in a subprocess.

The deployments are protected, as in production: `diag_tokens` makes a worker token
(the workers), a client token (hodei-diagnose: the least role it needs) and an admin
token in the test's database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.launchers.base import ANY_METRICS_PORT
from hodei.worker.command import worker_command


@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@pytest.fixture
def diag_tokens(db_url: str) -> dict[str, str]:
    import asyncio as aio

    from tests.integration.tokens import make_token

    async def make() -> dict[str, str]:
        return {role: await make_token(db_url, f"diag-{role}", role) for role in ROLES}

    # A fixture outside the test's loop: a loop of its own in a helper thread.
    result: dict[str, str] = {}
    import threading

    thread = threading.Thread(target=lambda: result.update(aio.run(make())))
    thread.start()
    thread.join()
    return result


ROLES = ("worker", "client", "admin")


@pytest.fixture
async def start_server(
    start_server: Callable[..., Any], diag_tokens: dict[str, str]
) -> Callable[..., Any]:
    """The shared fixture, with authentication on unless a test says otherwise."""

    async def start(**overrides: Any) -> Any:
        overrides.setdefault("auth", {"mode": "required"})
        return await start_server(**overrides)

    return start


@pytest.fixture
def spawn_worker(
    tmp_path: Path, diag_tokens: dict[str, str]
) -> Iterator[Callable[..., WorkerProc]]:
    """Start `python -m hodei.worker --server ADDR`; stopped (SIGCONT first) at teardown.
    `env`: HODEI_* variables for it (the test's own are not passed on)."""
    started: list[WorkerProc] = []

    def spawn(
        address: str, name: str = "diag-worker", env: dict[str, str] | None = None
    ) -> WorkerProc:
        log = tmp_path / f"{name}-{len(started)}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")} | {
            "HODEI_TOKEN": diag_tokens["worker"],
            **ANY_METRICS_PORT,
            **(env or {}),
        }
        proc = subprocess.Popen(
            worker_command(address, name=name, log_file=log),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        w = WorkerProc(proc, log)
        started.append(w)
        return w

    yield spawn
    for w in started:
        if w.proc.poll() is None:
            os.kill(w.pid, signal.SIGCONT)
            w.proc.terminate()
            try:
                w.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait(timeout=5)


@dataclass
class DiagnoseRun:
    code: int
    stdout: str
    stderr: str
    report: dict[str, Any]

    def check(self, check_id: str) -> dict[str, Any]:
        for c in self.report["checks"]:
            if c["id"] == check_id:
                return dict(c)
        raise AssertionError(f"no check {check_id} in the report")

    def statuses(self) -> dict[str, str]:
        return {c["id"]: c["status"] for c in self.report["checks"]}

    def failing(self) -> dict[str, str]:
        return {k: v for k, v in self.statuses().items() if v in ("WARN", "FAIL")}


@pytest.fixture
def run_diagnose(tmp_path: Path, diag_tokens: dict[str, str]) -> Callable[..., Any]:
    """Run the real `hodei-diagnose` CLI in a subprocess (the server keeps serving in
    this loop meanwhile) and return its exit code, output and JSON report."""

    async def run(*args: str, within_s: float = 60.0, token: str | None = None) -> DiagnoseRun:
        """`token`: HODEI_TOKEN of the run (default: the client token; "" for none)."""
        out = tmp_path / f"report-{time.monotonic_ns()}.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
        env["HODEI_TOKEN"] = diag_tokens["client"] if token is None else token
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hodei.diagnose.cli",
            *args,
            "--format",
            "json",
            "--output",
            str(out),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), within_s)
        report = json.loads(out.read_text()) if out.exists() else {}
        assert proc.returncode is not None
        return DiagnoseRun(proc.returncode, stdout.decode(), stderr.decode(), report)

    return run
