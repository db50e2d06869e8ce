"""OpenTelemetry traces: the entry points' tracer provider, and the W3C trace context
helpers the client, the server and the worker share.

Library code makes its spans with `opentelemetry.trace.get_tracer(__name__)` (the
API only), and only where `settings.tracing.enabled` (the client: its `tracing`
argument) says so: with tracing off no span object is made, no header is sent and the
job's stored context stays ''. The SDK is imported here, by `setup_tracing`, and only
when tracing is on; off, the API's no-op tracer is all that is loaded.

The context of a job crosses three boundaries, always as a W3C `traceparent`
("00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"): the gRPC metadata of
QueueJob/QueueJobs (`traceparent`, `tracestate`), the job's row (`jobs.trace_context`,
the enqueue span's: a dispatch minutes later, on another replica, continues the trace)
and the worker protocol (`RunJob.trace_context`, `JobResult.trace_context`).
See docs/observability.md#traces for the span tree.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hodei import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor

    from hodei.telemetry_settings import TracingSettings

#: Attribute names of the spans of a job (the OpenTelemetry convention: a namespace).
JOB_ID = "hodei.job_id"
ATTEMPT = "hodei.attempt"
WORKER_ID = "hodei.worker_id"
CORRELATION_ID = "hodei.correlation_id"

#: The service names when OTEL_SERVICE_NAME does not say.
SERVER_SERVICE = "hodei-server"
WORKER_SERVICE = "hodei-worker"
CLI_SERVICE = "hodei-cli"

_W3C = TraceContextTextMapPropagator()
_HEADERS = ("traceparent", "tracestate")


def _nothing() -> None:
    return None


def setup_tracing(
    settings: TracingSettings, service: str, export_timeout_s: float | None = None
) -> Callable[[], None]:
    """Install the SDK's tracer provider with the exporter the settings name, as the
    process's global provider, when tracing is on. Returns what the entry point calls
    before it exits: it flushes the spans not yet exported (a no-op when off).

    `export_timeout_s` bounds one export with its retries (the exporters' default is
    10 s): a short-lived CLI passes a few seconds, so that an unreachable collector
    does not hold every command at exit."""
    if not settings.enabled:
        return _nothing
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create(
        {"service.name": settings.service_name or service, "service.version": __version__}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(_processor(settings, export_timeout_s))
    trace.set_tracer_provider(provider)

    def shutdown() -> None:
        provider.shutdown()

    return shutdown


def _processor(settings: TracingSettings, timeout_s: float | None) -> SpanProcessor:
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    if settings.exporter == "console":
        # stderr, where the logs go: a CLI's stdout is the job's output.
        return SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr))
    endpoint = (settings.endpoint or "").rstrip("/")
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        target = endpoint or "http://localhost:4317"
        return BatchSpanProcessor(
            GrpcExporter(endpoint=target, insecure=target.startswith("http://"), timeout=timeout_s)
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    # The generic OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL: the traces
    # path is appended, as the specification says for this variable.
    return BatchSpanProcessor(
        HttpExporter(endpoint=f"{endpoint or 'http://localhost:4318'}/v1/traces", timeout=timeout_s)
    )


def maybe_span(
    tracer: trace.Tracer, on: bool, name: str, **kwargs: Any
) -> contextlib.AbstractContextManager[trace.Span | None]:
    """`tracer.start_as_current_span(name, **kwargs)` when `on`; otherwise nothing is
    made and the block gets None (tracing off costs one test)."""
    if on:
        return tracer.start_as_current_span(name, **kwargs)
    return contextlib.nullcontext()


def traceparent(span: trace.Span | None) -> str:
    """The W3C traceparent of `span` ("" for none, or a span that records nothing)."""
    if span is None:
        return ""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def context_of(traceparent: str) -> Context | None:
    """The context whose parent is the span this traceparent names; None for "" (a
    new trace) or a malformed value (the W3C rules: it is ignored, not an error)."""
    if not traceparent:
        return None
    ctx = _W3C.extract({"traceparent": traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def context_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> Context | None:
    """The caller's context from gRPC metadata (`traceparent`, `tracestate`); None when
    the call carries none."""
    carrier = {
        key: value if isinstance(value, str) else value.decode(errors="replace")
        for key, value in metadata or ()
        if key in _HEADERS
    }
    if "traceparent" not in carrier:
        return None
    ctx = _W3C.extract(carrier)
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def current_metadata() -> tuple[tuple[str, str], ...]:
    """The current span's context as gRPC metadata (empty outside a span)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return tuple(carrier.items())


def job_attributes(
    job_id: object, correlation_id: str, attempt: int = 0, worker_id: object = None
) -> Mapping[str, str | int]:
    """The attributes every span of a job carries (attempt and worker when known)."""
    attributes: dict[str, str | int] = {JOB_ID: str(job_id), CORRELATION_ID: correlation_id}
    if attempt:
        attributes[ATTEMPT] = attempt
    if worker_id:
        attributes[WORKER_ID] = str(worker_id)
    return attributes
