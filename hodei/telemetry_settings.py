"""The settings groups of the platform's telemetry: Prometheus metrics (`metrics`) and
OpenTelemetry traces (`tracing`). Declared like every other group (hodei.setting_groups);
import them from hodei.settings."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from hodei.setting_groups import _Group, setting

#: The default metrics ports: 9464 is the port OpenTelemetry's Prometheus exporter
#: uses, so firewalls and scrape configurations written for it already fit; workers
#: take the next one (`hodei up` gives its Nth worker 9465 + N - 1).
DEFAULT_SERVER_METRICS_PORT = 9464
DEFAULT_WORKER_METRICS_PORT = 9465


class MetricsSettings(_Group):
    """Prometheus exposition over HTTP (`GET /metrics`), one endpoint per process."""

    enabled: bool = setting(
        True,
        "HODEI_METRICS",
        "serve Prometheus metrics over HTTP (server and worker)",
        flag="--no-metrics",
    )
    port: int = setting(
        DEFAULT_SERVER_METRICS_PORT,
        "HODEI_METRICS_PORT",
        "HTTP port of the server's /metrics (0: any free port)",
        flag="--metrics-port",
        ge=0,
        le=65535,
    )
    worker_port: int = setting(
        DEFAULT_WORKER_METRICS_PORT,
        "HODEI_WORKER_METRICS_PORT",
        "HTTP port of the worker's /metrics (0: any free port)",
        flag="--worker-metrics-port",
        ge=0,
        le=65535,
    )
    refresh_interval: float = setting(
        5.0,
        "HODEI_METRICS_REFRESH_INTERVAL",
        "seconds between two reads of the server's database-wide gauges (queue, outbox, workers)",
        gt=0,
        le=3600,
    )
    host: str | None = setting(
        None,
        "HODEI_METRICS_HOST",
        "address /metrics listens on (default: the server's gRPC host, HODEI_HOST)",
    )

    @field_validator("host")
    @classmethod
    def _empty_is_default(cls, value: str | None) -> str | None:
        return value or None


class TracingSettings(_Group):
    """OpenTelemetry traces, read from the standard OTEL_* variables. Off unless an
    exporter is asked for: with the default, no SDK is loaded and spans cost nothing."""

    exporter: Literal["none", "otlp", "console"] = setting(
        "none",
        "OTEL_TRACES_EXPORTER",
        "none, otlp or console (standard OpenTelemetry variable; default: off)",
    )
    endpoint: str | None = setting(
        None,
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTLP collector URL (standard OpenTelemetry variable)",
    )
    protocol: Literal["grpc", "http/protobuf"] = setting(
        "http/protobuf",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTLP transport: grpc or http/protobuf (standard OpenTelemetry variable)",
    )
    service_name: str | None = setting(
        None,
        "OTEL_SERVICE_NAME",
        "service name on the spans (default: hodei-server, hodei-worker, hodei-cli)",
    )
    sdk_disabled: bool = setting(
        False, "OTEL_SDK_DISABLED", "turn tracing off whatever else is set (standard variable)"
    )

    @field_validator("exporter", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def enabled(self) -> bool:
        return self.exporter != "none" and not self.sdk_disabled
