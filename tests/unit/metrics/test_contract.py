"""Every metric of the contract (tests/unit/metrics/contract.py) is exposed with its
type and labels, and the exposition passes the real `promtool check metrics`."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from psycopg_pool import AsyncConnectionPool

from hodei.metrics import ServerMetrics, WorkerMetrics
from tests.unit.metrics import contract
from tests.unit.metrics.promtool import MISSING, promtool

#: Labels Prometheus's histogram and counter series add beside the declared ones.
_SERIES_LABELS = {"le"}


def busy_server() -> ServerMetrics:
    """Server metrics with a value in every family (a histogram's labels, a labelled
    counter's children only show once used)."""
    metrics = ServerMetrics()
    now = datetime.now(UTC)
    metrics.submitted(3)
    metrics.assigned([(now - timedelta(seconds=2), now)])
    metrics.finished("SUCCEEDED", now - timedelta(seconds=1), now)
    metrics.cycle_done()
    metrics.dispatcher_errors.inc()
    metrics.outbox_published.inc(4)
    metrics.logs_ingested(2, 10)
    metrics.grpc_handled.labels("hodei.api.v1.JobExecutionService", "QueueJob", "OK").inc()
    metrics.grpc_seconds.labels("hodei.api.v1.JobExecutionService", "QueueJob").observe(0.01)
    metrics.database_up.set(1)
    # A real pool (not opened: its counters are there all the same).
    metrics.pools.pools = {"api": AsyncConnectionPool("postgresql://", open=False)}
    metrics.snapshot(
        {
            "queue_depth": 2,
            "queue_oldest_wait_seconds": 1.5,
            "outbox_unpublished": 1,
            "outbox_publish_lag_seconds": 0.2,
            "workers_by_state": {"READY": 1},
            "worker_slots": 4,
            "worker_slots_busy": 1,
        }
    )
    return metrics


def busy_worker() -> WorkerMetrics:
    metrics = WorkerMetrics()
    metrics.jobs.labels("SUCCEEDED").inc()
    metrics.spawn_seconds.observe(0.002)
    metrics.log_bytes.inc(100)
    metrics.reconnects.inc()
    metrics.slots.set(2)
    metrics.slots_busy.set(1)
    return metrics


def exposed(text: str) -> dict[str, tuple[str, set[str]]]:
    families = {}
    for family in text_string_to_metric_families(text):
        labels = {k for s in family.samples for k in s.labels} - _SERIES_LABELS
        families[family.name] = (family.type, labels)
    return families


@pytest.mark.parametrize(
    ("owner", "expected"),
    [(busy_server, contract.SERVER), (busy_worker, contract.WORKER)],
    ids=["server", "worker"],
)
def test_every_contract_metric_is_exposed_with_its_type_and_labels(
    owner: object, expected: dict[str, tuple[str, tuple[str, ...]]]
) -> None:
    metrics = owner()  # type: ignore[operator]
    found = exposed(generate_latest(metrics.registry).decode())
    for name, (kind, labels) in expected.items():
        assert name in found, f"{name} is not exposed"
        assert found[name] == (kind, set(labels)), name
    assert set(found) == set(expected), "families outside the contract"


def test_the_server_counts_every_final_state_from_zero() -> None:
    text = generate_latest(ServerMetrics().registry).decode()
    for state in ("SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"):
        assert f'hodei_jobs_finished_total{{state="{state}"}} 0.0' in text
    for state in ("CREATING", "READY", "BUSY", "DRAINING", "TERMINATED", "LOST"):
        assert f'hodei_workers{{state="{state}"}} 0.0' in text


def test_a_wait_that_clocks_make_negative_counts_as_zero() -> None:
    metrics = ServerMetrics()
    now = datetime.now(UTC)
    metrics.assigned([(now, now - timedelta(milliseconds=3)), (None, now)])
    assert metrics.registry.get_sample_value("hodei_job_queue_wait_seconds_count") == 1
    assert metrics.registry.get_sample_value("hodei_job_queue_wait_seconds_sum") == 0


@pytest.mark.parametrize("owner", [busy_server, busy_worker], ids=["server", "worker"])
def test_the_exposition_passes_promtool_check_metrics(owner: object) -> None:
    tool = promtool()
    if tool is None:
        pytest.skip(MISSING)
    text = generate_latest(owner().registry)  # type: ignore[operator]
    done = subprocess.run(
        [tool, "check", "metrics"], input=text, capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode()
    assert (done.stdout + done.stderr).decode().strip() == ""
