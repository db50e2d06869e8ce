"""deploy/grafana/hodei.json: a Grafana dashboard that imports (schema, a Prometheus data
source variable every panel uses), whose every query parses (promtool, through a rule
file holding them as recording rules), covers the figures an operator looks for, and
reads the database-wide gauges with max, never sum. That every name it uses is exported
is checked against a real server and worker in tests/integration/deploy."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.prometheus import require_tool
from tests.deploy_files import (
    dashboard,
    dashboard_exprs,
    dashboard_panels,
    metric_names,
    recording_rules_file,
    unsafe_database_wide_reads,
)

#: What the dashboard must show (issue 15: queue, throughput, latency, workers, outbox),
#: as the metric names some panel has to read.
MUST_SHOW = {
    "queue depth": "hodei_queue_depth",
    "queue oldest wait": "hodei_queue_oldest_wait_seconds",
    "finished by state": "hodei_jobs_finished_total",
    "queue wait quantiles": "hodei_job_queue_wait_seconds_bucket",
    "run duration quantiles": "hodei_job_run_duration_seconds_bucket",
    "workers by state": "hodei_workers",
    "slots total": "hodei_worker_slots",
    "slots busy": "hodei_worker_slots_busy",
    "outbox unpublished": "hodei_outbox_unpublished",
    "outbox lag": "hodei_outbox_publish_lag_seconds",
    "gRPC calls by code": "hodei_grpc_server_handled_total",
}


def test_it_is_a_grafana_dashboard_with_a_prometheus_datasource_variable() -> None:
    board = dashboard()
    assert board["title"] and board["uid"]
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard_panels()
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"


def test_no_two_panels_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard_panels():
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, f"{panel['title']} is wider than the grid"
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    rules = recording_rules_file(exprs, tmp_path / "dashboard-queries.yml")
    result = subprocess.run(
        [str(require_tool("promtool")), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_a_broken_query_is_caught(tmp_path: Path) -> None:
    """The syntax check above can fail: a query missing its parenthesis does not pass."""
    rules = recording_rules_file(["sum(rate(hodei_jobs_submitted_total[5m])"], tmp_path / "q.yml")
    result = subprocess.run(
        [str(require_tool("promtool")), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0


def test_it_shows_what_an_operator_looks_for() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_exprs()))
    missing = {what: name for what, name in MUST_SHOW.items() if name not in used}
    assert not missing
    quantiles = [e for e in dashboard_exprs() if e.startswith("histogram_quantile(")]
    for family in ("hodei_job_queue_wait_seconds", "hodei_job_run_duration_seconds"):
        shown = {e.split(",")[0] for e in quantiles if f"{family}_bucket" in e}
        assert shown == {f"histogram_quantile({q}" for q in ("0.5", "0.95", "0.99")}, family


def test_database_wide_gauges_are_read_with_max_without_instance() -> None:
    unsafe = {e: unsafe_database_wide_reads(e) for e in dashboard_exprs()}
    assert {e: names for e, names in unsafe.items() if names} == {}
