"""The report of `hodei-diagnose`: its checks, the database snapshot and the canary."""

from __future__ import annotations

from typing import Any

from hodei.durations import human_age, ms
from hodei.redaction import redact
from hodei.report import assembly
from hodei.report.charts import latency_chart
from hodei.report.checklist import diagnose_checklist
from hodei.report.debug_commands import debug_commands
from hodei.report.model import (
    Chart,
    CheckResult,
    DatabaseSnapshot,
    JobTimes,
    LogScan,
    Metric,
    Report,
    ScenarioRecord,
    Status,
    StepRecord,
)
from hodei.report.rules import findings_from_checks


def diagnose_metrics(checks: list[CheckResult], canary: Any = None) -> list[Metric]:
    rows: list[Metric] = []
    by_id = {c.id: c for c in checks}
    for cid, component in (
        ("database.connect", "PostgreSQL"),
        ("server.health", "gRPC server"),
        ("workers.ready", "Workers"),
        ("queue.backlog", "Job queue"),
        ("dispatcher.progress", "Dispatcher"),
        ("outbox.backlog", "Outbox"),
        ("throughput.recent", "Throughput"),
        ("logs.grpc_errors", "Logs"),
    ):
        c = by_id.get(cid)
        if c is not None and c.status != Status.SKIP:
            rows.append(
                Metric(
                    component=component,
                    status=c.status,
                    response_time=ms(c.duration_s),
                    observations=c.observed,
                )
            )
    if canary is not None:
        life = by_id.get("canary.lifecycle")
        logs = by_id.get("canary.logs")
        st = life.status if life else Status.SKIP
        rows.append(
            Metric(
                component="Job dispatch (canary)",
                status=st,
                response_time=human_age(canary.dispatch_s),
                observations="created -> ASSIGNED, server timestamps",
            )
        )
        rows.append(
            Metric(
                component="Job execution (canary)",
                status=st,
                response_time=human_age(canary.execution_s),
                observations=f"RUNNING -> {canary.state}, exit {canary.exit_code}",
            )
        )
        rows.append(
            Metric(
                component="Log streaming (canary)",
                status=logs.status if logs else Status.SKIP,
                response_time=human_age(canary.first_log_s),
                observations=f"{len(canary.lines)} line(s) received, first after queueing",
            )
        )
    return rows


def canary_flow(canary: Any) -> ScenarioRecord:
    """The canary's lifecycle as steps, like the seed's "Paso 1: Job Creation"."""

    def step(name: str, seconds: float | None, ok: bool) -> StepRecord:
        status = Status.PASS if ok else (Status.FAIL if seconds is None else Status.WARN)
        return StepRecord(
            name=name,
            status=status,
            duration_s=round(seconds or 0.0, 4),
            error="" if ok else f"not reached (final state {canary.state or '?'})",
        )

    steps = [
        StepRecord(
            name=f"Job created: {canary.job_id or '?'} (labels hodei.io/test=true)",
            status=Status.PASS if canary.job_id else Status.FAIL,
            duration_s=0.0,
            error=canary.error,
        ),
        step("Dispatched: PENDING -> ASSIGNED", canary.dispatch_s, canary.dispatch_s is not None),
        step(
            "Started by the worker: ASSIGNED -> RUNNING", canary.start_s, canary.start_s is not None
        ),
        step(
            f"Finished: RUNNING -> {canary.state or '?'} (exit {canary.exit_code})",
            canary.execution_s,
            canary.state == "SUCCEEDED",
        ),
        step(
            f"Logs streamed: {len(canary.lines)} line(s), first after queueing",
            canary.first_log_s,
            canary.stdout_ok and canary.stderr_ok,
        ),
    ]
    status = Status.PASS if all(s.status == Status.PASS for s in steps) else Status.FAIL
    metrics = {
        k: v
        for k, v in (
            ("dispatch_s", canary.dispatch_s),
            ("start_s", canary.start_s),
            ("execution_s", canary.execution_s),
            ("first_log_s", canary.first_log_s),
        )
        if v is not None
    }
    return ScenarioRecord(
        name="hodei-diagnose canary",
        feature="canary",
        tags=["canary"],
        status=status,
        duration_s=float(canary.total_s or 0.0),
        steps=steps,
        error=canary.error,
        metrics=metrics,
    )


def build_diagnose_report(
    *,
    checks: list[CheckResult],
    snapshot: DatabaseSnapshot | None,
    database_url: str | None,
    server_address: str | None,
    log_scans: list[LogScan] | None = None,
    canary: Any = None,
    events: list[dict[str, Any]] | None = None,
    server_info: dict[str, Any] | None = None,
    log_paths: list[str] | None = None,
    duration_s: float = 0.0,
    job_times: list[JobTimes] | None = None,
    job_times_minutes: int = 0,
) -> Report:
    checks = assembly.redacted_checks(checks)
    findings = findings_from_checks(checks)
    target: dict[str, Any] = {
        "mode": "diagnose",
        "database_url": redact(database_url),
        "server_address": server_address or "",
        "server_info": server_info or {},
        "log_files": log_paths or [],
    }
    if snapshot is not None:
        target["workers"] = [
            {k: w.get(k) for k in ("id", "state", "pid", "heartbeat_age_s")}
            for w in snapshot.workers_sample
        ]
    if canary is not None:
        target["canary_job_id"] = canary.job_id
    report = Report(
        kind="diagnose",
        generated_at=assembly.now_iso(),
        version=assembly.hodei_version(),
        target=target,
        verdict=assembly.verdict_of(findings, checks, []),
        components=assembly.components_from(checks, findings),
        checks=checks,
        snapshot_after=snapshot,
        log_scans=assembly.redacted_scans(log_scans or []),
        scenarios=[canary_flow(canary)] if canary is not None else [],
        metrics=diagnose_metrics(checks, canary),
        checklist=diagnose_checklist(checks, snapshot, canary),
        timeline=assembly.timeline_from(
            events if events is not None else (snapshot.recent_events if snapshot else [])
        ),
        debug_commands=debug_commands(database_url, server_address, log_paths),
        duration_s=round(duration_s, 3),
        charts=recent_latency(job_times or [], job_times_minutes),
    )
    return assembly.finish(report, findings)


def recent_latency(times: list[JobTimes], minutes: int) -> list[Chart]:
    """The latency chart of the jobs that finished in the last `minutes`, if any did."""
    chart = latency_chart(times)
    if chart is None:
        return []
    chart.code = "CHART_RECENT_LATENCY"
    chart.params["minutes"] = minutes
    return [chart]
