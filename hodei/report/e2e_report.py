"""The report of a `pytest features/` run: its scenarios, the snapshots before and
after, the processes' logs, and the harness's own observations."""

from __future__ import annotations

from typing import Any

from hodei.redaction import redact, redact_text
from hodei.report import assembly
from hodei.report.checklist import e2e_checklist
from hodei.report.debug_commands import debug_commands
from hodei.report.model import (
    ChecklistItem,
    CheckResult,
    DatabaseSnapshot,
    LogScan,
    Metric,
    Report,
    ScenarioRecord,
    Status,
)
from hodei.report.rules import e2e_findings


def e2e_metrics(run: Any, scenarios: list[ScenarioRecord]) -> list[Metric]:
    rows: list[Metric] = []
    after: DatabaseSnapshot | None = getattr(run, "snapshot_after", None)
    measured: dict[str, float] = {}
    for s in scenarios:
        measured.update(s.metrics)
    if after is not None:
        db_ms = measured.get("db_roundtrip_ms")
        rows.append(
            Metric(
                component="PostgreSQL",
                status=Status.PASS,
                response_time=f"{db_ms:.0f} ms" if db_ms else "N/A",
                observations=f"schema v{after.schema_version}, {after.jobs_total} jobs, "
                f"{after.events_total} events",
            )
        )
    if "grpc_health_ms" in measured:
        rows.append(
            Metric(
                component="gRPC server",
                status=Status.PASS,
                response_time=f"{measured['grpc_health_ms']:.0f} ms",
                observations="grpc.health.v1 SERVING",
            )
        )
    for s in scenarios:
        extra = ", ".join(f"{k}={v:g}" for k, v in s.metrics.items())
        obs = (
            (s.error.splitlines()[0][:160] if s.error else "") or extra or f"{len(s.steps)} step(s)"
        )
        if s.error and extra:
            obs = f"{obs} ({extra})"
        rows.append(
            Metric(
                component=s.name,
                status=s.status,
                response_time=f"{s.duration_s:.2f} s",
                observations=redact_text(obs),
            )
        )
    return rows


#: The component each checklist item vouches for (e2e executive summary).
CHECKLIST_COMPONENT = {
    "DISPATCHER_CYCLES": "Dispatcher",
    "JOBS_LEAVE_PENDING": "Job queue",
    "WORKERS_RECEIVE_JOBS": "Workers",
    "LOGS_REACH_CLI": "Log streaming",
    "JOBS_COMPLETE": "Job execution",
    "NO_GRPC_ERRORS": "Logs",
    "THROUGHPUT_STABLE": "Throughput",
    "OUTBOX_PUBLISHED": "Outbox",
}


def seen_working(cid: str, component: str, title: str, observed: str) -> CheckResult:
    """A component line for something the run saw working."""
    return CheckResult(
        id=cid, component=component, status=Status.PASS, title=title, observed=observed
    )


def observed_components(
    after: DatabaseSnapshot | None, checklist: list[ChecklistItem]
) -> list[CheckResult]:
    """Component lines of an e2e run: PASS where the run observed it working, SKIP where
    it could not tell (findings then mark the broken ones)."""
    rows = [
        CheckResult(
            id=f"checklist.{i.code.lower()}",
            component=CHECKLIST_COMPONENT[i.code],
            status=Status.PASS if i.checked else Status.SKIP,
            title=i.code,
            observed=i.evidence,
        )
        for i in checklist
        if i.code in CHECKLIST_COMPONENT
    ]
    if after is not None and after.events_total:
        rows.append(
            seen_working(
                "events.recorded", "Domain events", "events", f"{after.events_total} domain events"
            )
        )
    return rows


def build_e2e_report(run: Any, *, checks: list[CheckResult] | None = None) -> Report:
    """The report of a `pytest features/` run (see docs/report-catalogue.md for `run`)."""
    scenarios = [
        s.model_copy(
            update={
                "error": redact_text(s.error),
                "steps": [st.model_copy(update={"error": redact_text(st.error)}) for st in s.steps],
            }
        )
        for s in getattr(run, "scenarios", [])
    ]
    before = getattr(run, "snapshot_before", None)
    after = getattr(run, "snapshot_after", None)
    scans: list[LogScan] = list(getattr(run, "log_scans", []))
    checks = assembly.redacted_checks(list(checks or []))
    dep = getattr(run, "deployment", None)
    launch_error = getattr(run, "launch_error", "")
    if launch_error:
        checks.append(
            CheckResult(
                id="platform.launch",
                component="gRPC server",
                status=Status.FAIL,
                title="Platform started",
                observed=redact_text(launch_error),
                finding="SCENARIO_FAILED",
                params={
                    "scenario": "platform start",
                    "step": "launch",
                    "error": redact_text(launch_error)[:200],
                },
            )
        )
    findings = e2e_findings(scenarios, before, after, scans, checks)
    db_url = getattr(dep, "database_url", None)
    server = getattr(dep, "server_address", None)
    target: dict[str, Any] = {
        "mode": getattr(run, "launcher", ""),
        "database_url": redact(db_url),
        "server_address": server or "",
        "server_info": getattr(run, "server_info", {}) or {},
        "workers": getattr(run, "workers", []) or [],
        "errors": [redact_text(e) for e in getattr(run, "errors", [])],
    }
    if dep is not None:
        target["processes"] = [
            {"role": p.role, "name": p.name, "pid": p.pid, "log_path": str(p.log_path or "")}
            for p in dep.processes
        ]
    log_paths = [str(p.log_path) for p in getattr(dep, "processes", []) if p.log_path]
    comp_checks = list(checks)
    if after is not None:
        comp_checks.append(
            seen_working(
                "database.snapshot",
                "PostgreSQL",
                "Database snapshot",
                f"schema v{after.schema_version}",
            )
        )
    if target["server_info"]:
        comp_checks.append(
            seen_working(
                "server.info",
                "gRPC server",
                "Server info",
                f"version {target['server_info'].get('version')}",
            )
        )
    checklist = e2e_checklist(scenarios, before, after, scans, findings)
    comp_checks += observed_components(after, checklist)
    report = Report(
        kind="e2e",
        generated_at=getattr(run, "finished_at", "") or assembly.now_iso(),
        version=assembly.hodei_version(),
        target=target,
        verdict=assembly.verdict_of(findings, checks, scenarios),
        components=assembly.components_from(comp_checks, findings),
        scenarios=scenarios,
        checks=checks,
        snapshot_before=before,
        snapshot_after=after,
        log_scans=assembly.redacted_scans(scans),
        metrics=e2e_metrics(run, scenarios),
        checklist=checklist,
        # The @lifecycle scenario's own job when the harness read its events; the
        # database's latest events (the run's last burst job, most likely) otherwise.
        timeline=assembly.timeline_from(
            list(getattr(run, "lifecycle_events", None) or [])
            or (after.recent_events if after else [])
        ),
        debug_commands=debug_commands(db_url, server, log_paths),
        duration_s=float(getattr(run, "duration_s", 0.0)),
    )
    return assembly.finish(report, findings)
