"""Traces across processes, exported the way an operator turns them on: a real server
process, a real worker process and the CLI, each with OTEL_TRACES_EXPORTER=otlp and
OTEL_EXPORTER_OTLP_ENDPOINT pointing at a tiny OTLP/HTTP collector of the test's
(tests/integration/tracing/spans.py). Their spans of the one job share one trace id."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.waits import wait_for, wait_until_async
from tests.integration.cli_process import hodei
from tests.integration.conftest import SpawnWorker
from tests.integration.tracing.spans import OtlpReceiver, Received

pytestmark = pytest.mark.integration


class ServerExited(AssertionError):
    """The server process ended before it said where it listens."""


def start_server_process(
    db_url: str, log: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    argv = [sys.executable, "-m", "hodei.server", "--port", "0", "--auth", "off"]
    argv += ["--database-url", db_url, "--log-file", str(log)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> str | None:
        text = log.read_text() if log.exists() else ""
        if match := re.search(r"listening on (127\.0\.0\.1:\d+)", text):
            return match.group(1)
        if proc.poll() is not None:
            raise ServerExited(f"server exited {proc.returncode}; log:\n{text}")
        return None

    address = wait_for(
        "the server to say where it listens",
        listening,
        lambda found: found is not None,
        timeout_s=30,
        abort_on=(ServerExited,),
    )
    assert address is not None
    return proc, address


async def test_server_worker_and_cli_processes_export_one_trace_over_otlp(
    db_url: str, tmp_path: Path, spawn_worker: SpawnWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OtlpReceiver() as otlp:
        otel = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            # The SDK's own variable: export every 100 ms instead of every 5 s.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        # The worker fixture passes this test process's environment on.
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
        env.update(otel, HODEI_METRICS_PORT="0", HODEI_WORKER_METRICS_PORT="0")
        server, address = start_server_process(db_url, tmp_path / "server.log", env)
        try:
            await spawn_worker(
                address,
                tracing={"exporter": "otlp", "endpoint": otlp.endpoint},
                metrics={"worker_port": 0},
            )
            run = await hodei(
                "job", "run", "--", "sh", "-c", "echo traced", server=address, env=otel
            )
            assert run.returncode == 0, run

            def services() -> set[str]:
                return {s.service for s in otlp.spans()}

            await wait_until_async(
                "spans from the CLI, the server and the worker",
                lambda: (
                    {"hodei-cli", "hodei-server", "hodei-worker"} <= services()
                    and any(s.name == "result" for s in otlp.spans())
                ),
                20,
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
        spans = otlp.spans()

    by_name: dict[str, Received] = {}
    for span in spans:
        by_name.setdefault(span.name, span)
    assert {s.trace_id for s in spans} == {by_name["submit"].trace_id}, [
        (s.service, s.name, s.trace_id) for s in spans
    ]
    where = {name: by_name[name].service for name in ("submit", "enqueue", "RunJob", "result")}
    assert where == {
        "submit": "hodei-cli",
        "enqueue": "hodei-server",
        "RunJob": "hodei-worker",
        "result": "hodei-server",
    }
    # Parents across the process boundaries: dispatch (server) -> RunJob (worker) ->
    # result (server).
    assert by_name["RunJob"].parent_span_id == by_name["dispatch"].span_id
    assert by_name["result"].parent_span_id == by_name["RunJob"].span_id
    job_id = by_name["submit"].attributes["hodei.job_id"]
    assert by_name["RunJob"].attributes["hodei.job_id"] == job_id
