"""Every metric the alert rules, the Grafana dashboard and KEDA's query name is one the
platform exports: the names are read from the real exposition of a server and a worker process
(after one job, so that the labelled families have samples), parsed with
prometheus_client's own parser, never from a list kept by hand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harness.launchers.base import free_port
from hodei.api.v1 import common_pb2
from tests.deploy_files import (
    PROMETHEUS_SERIES,
    alert_rules,
    dashboard_exprs,
    exported_names,
    label_matchers,
    metric_names,
)
from tests.integration.conftest import SpawnWorker
from tests.integration.metrics.scrape import Scrape, scrape
from tests.kube_manifests import keda_queries

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[Any]]
#: Labels Prometheus adds to every series it scrapes.
TARGET_LABELS = {"job", "instance"}


def _queries() -> list[tuple[str, str]]:
    rules = [(f"alert {r['alert']}", str(r["expr"])) for r in alert_rules()]
    dashboards = [(f"dashboard query {i}", e) for i, e in enumerate(dashboard_exprs())]
    return rules + dashboards + [(f"KEDA query {i}", e) for i, e in enumerate(keda_queries())]


async def _expositions(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Callable[[str], Any]
) -> list[Scrape]:
    app = await start_server()
    port = free_port()
    worker = await spawn_worker(app.address, metrics={"worker_port": port})
    stubs = stubs_for(app.address)
    job = await stubs.queue(["sh", "-c", "echo out"])
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=20)
    pages = [await scrape(app.metrics_port), await scrape(port)]
    await worker.stop()  # its stream ends: WorkerStream's handled_total gets its sample
    return [*pages, await scrape(app.metrics_port)]


async def test_every_name_in_the_rules_and_the_dashboard_is_exported(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Callable[[str], Any]
) -> None:
    pages = await _expositions(start_server, spawn_worker, stubs_for)
    exported = PROMETHEUS_SERIES.union(
        *(exported_names({n: f.type for n, f in p.families.items()}) for p in pages)
    )
    assert "hodei_jobs_submitted_total" in exported and "hodei_worker_jobs_total" in exported
    missing = {
        where: sorted(metric_names(expr) - exported)
        for where, expr in _queries()
        if metric_names(expr) - exported
    }
    assert missing == {}, f"names no process exports (it does: {sorted(exported)})"


async def test_every_label_they_match_on_is_one_the_series_carry(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Callable[[str], Any]
) -> None:
    pages = await _expositions(start_server, spawn_worker, stubs_for)
    carried: dict[str, set[str]] = {}
    for page in pages:
        for sample in page.samples:
            carried.setdefault(sample.name, set()).update(sample.labels)
    wrong = {}
    for where, expr in _queries():
        for name, labels in label_matchers(expr).items():
            if name in PROMETHEUS_SERIES:
                continue
            unknown = labels - TARGET_LABELS - carried.get(name, set())
            if unknown:
                wrong[f"{where}: {name}"] = sorted(unknown)
    assert wrong == {}, "matchers on labels the series do not have (always empty)"


async def test_the_label_values_the_alerts_single_out_occur(
    start_server: StartServer, spawn_worker: SpawnWorker, stubs_for: Callable[[str], Any]
) -> None:
    """state="LOST", grpc_method="WorkerStream", grpc_code OK and CANCELLED...: a value
    spelled differently from what the platform writes would leave an alert blind."""
    server_page, worker_page, after_stop = await _expositions(start_server, spawn_worker, stubs_for)
    states = {s.labels["state"] for s in server_page.samples if s.name == "hodei_workers"}
    assert {"READY", "BUSY", "LOST"} <= states
    finished = {
        s.labels["state"] for s in server_page.samples if s.name == "hodei_jobs_finished_total"
    }
    assert {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"} <= finished
    streams = [
        s.labels
        for s in after_stop.samples
        if s.name == "hodei_grpc_server_handled_total" and s.labels["grpc_method"] == "WorkerStream"
    ]
    assert streams, "no WorkerStream sample after a worker closed its stream"
    assert {s["grpc_service"] for s in streams} == {"hodei.api.v1.WorkerAgentService"}
    # A worker stopped by SIGTERM closes its stream itself: not an error for
    # HodeiWorkerStreamErrors, which leaves OK and CANCELLED out.
    assert {s["grpc_code"] for s in streams} <= {"OK", "CANCELLED"}, streams
    assert worker_page.value("hodei_worker_slots") >= 1
