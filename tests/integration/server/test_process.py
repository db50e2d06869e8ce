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

pytestmark = pytest.mark.integration


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
        deadline = time.monotonic() + 30
        port = None
        while time.monotonic() < deadline and port is None:
            text = log.read_text() if log.exists() else ""
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            if match:
                port = int(match.group(1))
            elif proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
            else:
                time.sleep(0.1)
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
