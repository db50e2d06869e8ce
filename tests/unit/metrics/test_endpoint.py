"""hodei.metrics.endpoint: a real HTTP server on loopback, scraped over HTTP."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from hodei.errors import Unavailable
from hodei.metrics import MetricsEndpoint, WorkerMetrics


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        assert reply.status == 200
        return reply.read().decode()


def test_port_zero_binds_a_free_port_and_serves_the_registry() -> None:
    metrics = WorkerMetrics()
    endpoint = MetricsEndpoint(metrics.registry, "127.0.0.1", 0, "worker")
    endpoint.start()
    try:
        assert endpoint.port > 0
        assert endpoint.url == f"http://127.0.0.1:{endpoint.port}/metrics"
        text = scrape(endpoint.url)
        assert 'hodei_build_info{component="worker"' in text
        assert "# TYPE hodei_worker_jobs_total counter" in text
    finally:
        endpoint.stop()
    with pytest.raises(OSError):
        scrape(endpoint.url)


def test_a_port_in_use_is_one_line_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        endpoint = MetricsEndpoint(WorkerMetrics().registry, "127.0.0.1", port, "worker")
        with pytest.raises(Unavailable) as err:
            endpoint.start()
    message = str(err.value)
    assert "\n" not in message
    assert f"cannot serve metrics on 127.0.0.1:{port}: the port is in use" in message


def test_two_owners_never_share_counters() -> None:
    one, two = WorkerMetrics(), WorkerMetrics()
    one.reconnects.inc()
    assert one.registry.get_sample_value("hodei_worker_reconnects_total") == 1
    assert two.registry.get_sample_value("hodei_worker_reconnects_total") == 0
