"""Report inputs shared by the report tests: snapshots shaped like the seed's deployment,
check results, and e2e runs as the harness hands them to the builder. Pure data."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hodei.report.model import (
    CheckResult,
    DatabaseSnapshot,
    LogScan,
    ScenarioRecord,
    Status,
    StepRecord,
)

SECRET_URL = "postgresql://hodei:s3cr3t-pw@db.example:5432/hodei_jobs"


def server_row(**kw: Any) -> dict[str, Any]:
    row = {
        "server_id": "srv-1",
        "version": "0.1.0",
        "started_at": "2025-12-23 20:40:00+00",
        "dispatcher_enabled": True,
        "outbox_relay_enabled": True,
        "dispatcher_cycles": 300,
        "dispatched_total": 2,
        "stopped_at": None,
        "heartbeat_age_s": 0.5,
        "last_cycle_age_s": 300.0,
        "last_dispatch_age_s": 320.0,
        "last_publish_age_s": 1.0,
    }
    row.update(kw)
    return row


def seed_like_snapshot(**kw: Any) -> DatabaseSnapshot:
    """The seed's situation: 1 job PENDING for 5 min, 1 READY worker, no cycle for 5 min."""
    snap = DatabaseSnapshot(
        taken_at="2025-12-23T20:50:00+00:00",
        jobs_total=12,
        jobs_by_state={"PENDING": 1, "SUCCEEDED": 2},
        oldest_pending_age_s=300.0,
        queue_depth=1,
        queue_oldest_age_s=300.0,
        queue_sample=[
            {
                "job_id": "26e120ad-6b4b-4f6b-af7e-b02273abb646",
                "state": "PENDING",
                "enqueued_at": "2025-12-23 20:45:13+00",
                "age_s": 300.0,
            }
        ],
        workers_by_state={"READY": 1, "CREATING": 1},
        workers_sample=[
            {
                "id": "ad518c8f-3c7f-44d7-bf42-e79e88cb7630",
                "name": "w1",
                "state": "READY",
                "pid": 211908,
                "server_id": "srv-1",
                "current_job_id": None,
                "running_jobs": 0,
                "heartbeat_age_s": 2.0,
            }
        ],
        events_total=98,
        events_by_type={"JobCreated": 12, "JobAssigned": 2, "JobStarted": 2, "JobSucceeded": 2},
        recent_events=[
            {
                "event_type": "JobCreated",
                "aggregate_type": "job",
                "aggregate_id": "26e120ad-6b4b-4f6b-af7e-b02273abb646",
                "actor": "cli",
                "occurred_at": "2025-12-23 20:45:13.819185+00",
            }
        ],
        outbox_total=98,
        outbox_unpublished=0,
        job_logs_total=4,
        servers=[server_row()],
        schema_version=1,
    )
    for k, v in kw.items():
        setattr(snap, k, v)
    return snap


def chk(
    cid: str,
    component: str,
    status: Status,
    finding: str = "",
    params: dict[str, Any] | None = None,
    observed: str = "",
) -> CheckResult:
    return CheckResult(
        id=cid,
        component=component,
        status=status,
        title=cid,
        observed=observed or status.value,
        finding=finding,
        params=params or {},
    )


def stalled_checks() -> list[CheckResult]:
    return [
        chk("database.connect", "PostgreSQL", Status.PASS, observed="connect 3 ms"),
        chk("server.health", "gRPC server", Status.PASS, observed="SERVING"),
        chk("workers.ready", "Workers", Status.PASS, observed="1 READY"),
        chk(
            "queue.backlog",
            "Job queue",
            Status.WARN,
            "LOW_THROUGHPUT",
            {"rate": "0.0", "pending": 2},
        ),
        chk(
            "dispatcher.progress",
            "Dispatcher",
            Status.FAIL,
            "DISPATCHER_STALLED",
            {"pending": 2, "pending_age": "5 min", "ready": 1, "cycle_age": "5 min"},
            observed="dispatcher not processing the queue",
        ),
        chk("throughput.recent", "Throughput", Status.PASS),
        chk("logs.grpc_errors", "Logs", Status.PASS),
    ]


def e2e_run(
    scenarios: list[ScenarioRecord],
    before: DatabaseSnapshot | None,
    after: DatabaseSnapshot | None,
    scans: list[LogScan] | None = None,
) -> Any:
    dep = SimpleNamespace(
        mode="local",
        database_url=SECRET_URL,
        server_address="127.0.0.1:50999",
        processes=[
            SimpleNamespace(role="server", name="server", pid=4242, log_path="/tmp/server.log")
        ],
    )
    return SimpleNamespace(
        launcher="local",
        deployment=dep,
        started_at="",
        finished_at="",
        duration_s=12.5,
        scenarios=scenarios,
        log_scans=scans or [],
        snapshot_before=before,
        snapshot_after=after,
        faults=[],
        server_info={"version": "0.1.0"},
        workers=[],
        launch_error="",
        errors=[],
        log_dir="",
    )


def lifecycle(status: Status, error: str = "", **metrics: float) -> ScenarioRecord:
    steps = [
        StepRecord(name="a job is queued", status=Status.PASS, duration_s=0.01),
        StepRecord(name="the job reaches RUNNING", status=status, duration_s=10.0, error=error),
    ]
    return ScenarioRecord(
        name="job lifecycle",
        feature="lifecycle.feature",
        tags=["lifecycle"],
        status=status,
        duration_s=10.1,
        steps=steps,
        error=error,
        metrics=dict(metrics),
    )


def failed_at_one_step(
    name: str,
    duration_s: float,
    step: str,
    step_s: float,
    error: str,
    metrics: dict[str, float] | None = None,
) -> ScenarioRecord:
    """Scenario `name` (in `name`.feature) that failed at its only step."""
    return ScenarioRecord(
        name=name,
        feature=f"{name}.feature",
        tags=[],
        status=Status.FAIL,
        duration_s=duration_s,
        steps=[StepRecord(name=step, status=Status.FAIL, duration_s=step_s, error=error)],
        metrics=metrics or {},
    )
