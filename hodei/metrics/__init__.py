"""Prometheus metrics of Hodei's processes: the families of the metric contract
(`families`), the HTTP endpoint that serves them (`endpoint`) and the collectors read
at scrape time (`pools`). Each server and each worker owns its own CollectorRegistry:
tests run several servers in one process, and their counters must not mix."""

from hodei.metrics.endpoint import MetricsEndpoint, metrics_host
from hodei.metrics.families import (
    ServerMetrics,
    WorkerMetrics,
    server_metrics,
    use_server_metrics,
)

__all__ = [
    "MetricsEndpoint",
    "ServerMetrics",
    "WorkerMetrics",
    "metrics_host",
    "server_metrics",
    "use_server_metrics",
]
