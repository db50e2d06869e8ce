"""hodei.tracing: the W3C context helpers, "free when off" (no SDK loaded), and the
console and OTLP/gRPC exporters an entry point installs (in a child process: a process
has one global tracer provider). OTLP/HTTP is exercised across real processes in
tests/integration/tracing/test_otlp_export.py."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from hodei.tracing import (
    context_from_metadata,
    context_of,
    current_metadata,
    job_attributes,
    traceparent,
)

_REPO = Path(__file__).resolve().parents[2]


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HODEI_", "OTEL_"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "PYTHONPATH": str(_REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_span_travels_as_a_traceparent_and_comes_back_as_its_parent() -> None:
    tracer = TracerProvider().get_tracer("test")
    span = tracer.start_span("enqueue")
    header = traceparent(span)
    ctx = span.get_span_context()
    assert header.startswith(f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-")
    child = tracer.start_span("dispatch", context=context_of(header))
    assert isinstance(child, ReadableSpan)
    assert child.parent is not None and child.parent.span_id == ctx.span_id
    assert child.get_span_context().trace_id == ctx.trace_id


def test_no_or_a_malformed_context_starts_nothing() -> None:
    assert traceparent(None) == ""
    assert traceparent(trace.INVALID_SPAN) == ""
    assert context_of("") is None
    assert context_of("00-not-a-trace") is None
    assert context_from_metadata(None) is None
    assert context_from_metadata([("authorization", "Bearer x")]) is None


def test_grpc_metadata_carries_the_current_span_both_ways() -> None:
    tracer = TracerProvider().get_tracer("test")
    assert current_metadata() == ()
    with tracer.start_as_current_span("submit") as span:
        metadata = dict(current_metadata())
    assert metadata["traceparent"] == traceparent(span)
    as_bytes: list[tuple[str, str | bytes]] = [
        ("traceparent", metadata["traceparent"].encode()),
        ("x-other", "1"),
    ]
    ctx = context_from_metadata(as_bytes)
    assert ctx is not None
    assert trace.get_current_span(ctx).get_span_context().span_id == (
        span.get_span_context().span_id
    )


def test_job_attributes_name_the_job_and_only_the_known_rest() -> None:
    assert job_attributes("j", "c") == {"hodei.job_id": "j", "hodei.correlation_id": "c"}
    assert job_attributes("j", "c", 2, "w") == {
        "hodei.job_id": "j",
        "hodei.correlation_id": "c",
        "hodei.attempt": 2,
        "hodei.worker_id": "w",
    }


def test_tracing_off_loads_no_sdk_in_the_server_worker_or_cli() -> None:
    code = (
        "import sys\n"
        "import hodei.server.app, hodei.worker.service, hodei.cli.main, hodei.client\n"
        "from hodei.settings import Settings\n"
        "from hodei.tracing import setup_tracing\n"
        "setup_tracing(Settings().tracing, 'hodei-server')()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))\n"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_console_exporter_writes_the_spans_to_stderr() -> None:
    code = (
        "from opentelemetry import trace\n"
        "from hodei.settings import Settings\n"
        "from hodei.tracing import setup_tracing\n"
        "flush = setup_tracing(Settings().tracing, 'hodei-cli')\n"
        "with trace.get_tracer('probe').start_as_current_span('probe-span'):\n"
        "    print('stdout stays the job output')\n"
        "flush()\n"
    )
    done = _python(code, OTEL_TRACES_EXPORTER="console")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "stdout stays the job output\n"
    assert '"name": "probe-span"' in done.stderr
    assert '"service.name": "hodei-cli"' in done.stderr
    # OTEL_SDK_DISABLED wins over the exporter: nothing is written.
    quiet = _python(code, OTEL_TRACES_EXPORTER="console", OTEL_SDK_DISABLED="true")
    assert quiet.returncode == 0, quiet.stderr
    assert "probe-span" not in quiet.stderr


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC collector that keeps the names of the spans it receives."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.names += [span.name for span in scope.spans]
        return trace_service_pb2.ExportTraceServiceResponse()


def test_the_otlp_grpc_exporter_reaches_a_grpc_collector() -> None:
    collector = _Collector()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        code = (
            "from opentelemetry import trace\n"
            "from hodei.settings import Settings\n"
            "from hodei.tracing import setup_tracing\n"
            "flush = setup_tracing(Settings().tracing, 'hodei-worker')\n"
            "trace.get_tracer('probe').start_span('over-grpc').end()\n"
            "flush()\n"
        )
        done = _python(
            code,
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        )
    finally:
        server.stop(grace=None)
    assert done.returncode == 0, done.stderr
    assert collector.names == ["over-grpc"], done.stderr


def test_an_unreachable_collector_delays_a_short_lived_process_by_the_bound_only() -> None:
    # The CLI passes export_timeout_s: its spans are flushed at exit, and a collector
    # that is down must not hold every command for the exporters' 10 s of retries.
    code = (
        "import time\n"
        "from opentelemetry import trace\n"
        "from hodei.settings import Settings\n"
        "from hodei.tracing import setup_tracing\n"
        "flush = setup_tracing(Settings().tracing, 'hodei-cli', export_timeout_s=1.0)\n"
        "with trace.get_tracer('probe').start_as_current_span('probe-span'):\n"
        "    pass\n"
        "began = time.monotonic()\n"
        "flush()\n"
        "print(round(time.monotonic() - began, 2))\n"
    )
    done = _python(
        code, OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:1"
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 3.0, (done.stdout, done.stderr)
