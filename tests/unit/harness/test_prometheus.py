"""harness/prometheus.py: finding the tools, and a real Prometheus that scrapes a real
HTTP endpoint, answers queries, loads Hodei's rules and stops."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import prometheus
from harness.prometheus import PrometheusError, PrometheusServer, host_port, scrape_config
from harness.waits import wait_for
from tests.deploy_files import alert_rules

EXPOSITION = b"""# HELP hodei_jobs_submitted_total Jobs accepted.
# TYPE hodei_jobs_submitted_total counter
hodei_jobs_submitted_total 7.0
"""


class _Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(EXPOSITION)

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def metrics_endpoint() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def test_a_missing_tool_skips_or_fails_as_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(prometheus, "TOOLS_BIN", tmp_path / "nowhere")
    assert prometheus.find_tool("promtool") is None
    monkeypatch.delenv(prometheus.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"install_prometheus\.sh"):
        prometheus.require_tool("promtool")
    monkeypatch.setenv(prometheus.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="HODEI_REQUIRE_PROMETHEUS=1"):
        prometheus.require_tool("promtool")


def test_a_tool_on_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "promtool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert prometheus.find_tool("promtool") == tool


def test_the_config_has_one_job_per_name_with_targets() -> None:
    config = scrape_config({"hodei-server": ["127.0.0.1:1"], "hodei-worker": []}, [])
    assert [job["job_name"] for job in config["scrape_configs"]] == ["hodei-server"]
    assert host_port("http://127.0.0.1:9464/metrics") == "127.0.0.1:9464"
    with pytest.raises(ValueError, match="host and port"):
        host_port("http://127.0.0.1/metrics")


def test_a_real_prometheus_scrapes_queries_loads_the_rules_and_stops(
    tmp_path: Path, metrics_endpoint: str
) -> None:
    binary = prometheus.require_tool("prometheus")
    server = PrometheusServer(binary, tmp_path, {"hodei-server": [host_port(metrics_endpoint)]})
    with server:
        assert server.port > 0
        wait_for(
            "the endpoint scraped",
            lambda: server.query('sum(hodei_jobs_submitted_total{job="hodei-server"})'),
            lambda vector: bool(vector) and vector[0][1] == 7.0,
            timeout_s=15,
            poll_s=0.2,
        )
        assert server.targets_health() == [("hodei-server", host_port(metrics_endpoint), "up")]
        rules = server.rules()
        assert {r["name"] for r in rules} == {r["alert"] for r in alert_rules()}
        assert all(r["health"] != "err" for r in rules)
        with pytest.raises(PrometheusError, match="bad_data"):
            server.query("sum(")
        proc = server._proc
    assert proc is not None and proc.poll() is not None, "stop() left prometheus running"


def test_a_prometheus_that_cannot_start_says_why(tmp_path: Path) -> None:
    binary = prometheus.require_tool("prometheus")
    bad_rules = tmp_path / "bad.yml"
    bad_rules.write_text("groups: [{name: x, rules: [{alert: A, expr: 'sum('}]}]\n")
    server = PrometheusServer(binary, tmp_path / "p", {}, rule_files=[bad_rules])
    with pytest.raises(PrometheusError, match="exited with code"):
        server.start()
