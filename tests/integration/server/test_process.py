"""`python -m hodei.server` as a real process: starts, logs its loops, serves health,
stops gracefully on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness.waits import wait_for

pytestmark = pytest.mark.integration


class ServerExited(AssertionError):
    """The server process ended before it said where it listens."""


def test_server_process_starts_serves_and_stops_on_sigterm(db_url: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hodei.server",
            "--port",
            "0",
            "--database-url",
            db_url,
            "--log-file",
            str(log),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def listening_port() -> int | None:
            text = log.read_text() if log.exists() else ""
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            if match:
                return int(match.group(1))
            if proc.poll() is not None:
                raise ServerExited(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
            return None

        port = wait_for(
            "the server to say where it listens",
            listening_port,
            lambda found: found is not None,
            timeout_s=30,
            poll_s=0.1,
            abort_on=(ServerExited,),
        )
        assert port, "server never said where it listens"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    for line in (
        "dispatcher started",
        "outbox relay started",
        "recovery loop started",
        "hodei server stopped",
    ):
        assert line in text, f"{line!r} missing from the server log"
    assert " ERROR " not in text and "Traceback" not in text
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT dispatcher_last_cycle_at IS NOT NULL, stopped_at IS NOT NULL FROM server_status"
        ).fetchone()
    assert row == (True, True)
