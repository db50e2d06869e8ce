"""Build a Report from observations: findings, root cause, checklist, metrics, timeline."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from typing import Any

from hodei.durations import human_age, ms
from hodei.redaction import redact, redact_text
from hodei.report.checklist import diagnose_checklist, e2e_checklist
from hodei.report.model import (
    ChecklistItem,
    CheckResult,
    DatabaseSnapshot,
    Finding,
    LogScan,
    Metric,
    Report,
    ScenarioRecord,
    Status,
    StepRecord,
    TimelineEvent,
)
from hodei.report.rules import FINDING_COMPONENT, e2e_findings, findings_from_checks, root_cause

COMPONENT_ORDER = [
    "PostgreSQL",
    "gRPC server",
    "Workers",
    "Job queue",
    "Dispatcher",
    "Job execution",
    "Consistency",
    "Domain events",
    "Outbox",
    "Log streaming",
    "Throughput",
    "Logs",
]
_RANK = {Status.FAIL: 3, Status.WARN: 2, Status.PASS: 1, Status.SKIP: 0}

SEED_QUERIES = [
    "SELECT id, state, attempts, created_at FROM jobs ORDER BY created_at DESC LIMIT 5;",
    "SELECT jq.job_id, jq.enqueued_at, j.state FROM job_queue jq JOIN jobs j ON jq.job_id = j.id;",
    "SELECT id, state, last_heartbeat, current_job_id FROM workers;",
    "SELECT event_type, aggregate_id, actor, occurred_at FROM domain_events "
    "ORDER BY occurred_at DESC LIMIT 10;",
    "SELECT server_id, dispatcher_enabled, dispatcher_last_cycle_at, dispatcher_cycles, "
    "outbox_last_publish_at, heartbeat_at FROM server_status;",
    "SELECT count(*) FILTER (WHERE published_at IS NULL) AS unpublished, "
    "min(created_at) FILTER (WHERE published_at IS NULL) AS oldest FROM outbox_events;",
]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def hodei_version() -> str:
    try:
        from importlib.metadata import version

        return version("hodei")
    except Exception:
        return "unknown"


def debug_commands(
    database_url: str | None, server: str | None, log_paths: list[str] | None = None
) -> list[str]:
    """Commands pointed at this very deployment; the password is never printed."""
    cmds: list[str] = []
    if database_url:
        url = redact(database_url)
        note = "# password redacted: export PGPASSWORD first" if url != database_url else ""
        if note:
            cmds.append(note)
        for q in SEED_QUERIES:
            cmds.append(f"psql {shlex.quote(url)} -c {shlex.quote(q)}")
    if server:
        for sub in ("job list", "workers", "queue"):
            cmds.append(f"hodei {sub} --server {server}")
        diag = f"hodei-diagnose --server {server} --canary"
        if database_url:
            diag += f" --database-url {shlex.quote(redact(database_url))}"
        cmds.append(diag)
    for path in log_paths or []:
        cmds.append(f"tail -f {shlex.quote(path)} | grep -E 'dispatcher|ERROR|UNAVAILABLE'")
    return cmds


def components_from(checks: list[CheckResult], findings: list[Finding]) -> list[CheckResult]:
    """One line per component with its worst status (the executive summary)."""
    rows: dict[str, CheckResult] = {}
    passed: dict[str, list[CheckResult]] = {}
    for c in checks:
        row = rows.setdefault(
            c.component,
            CheckResult(
                id=c.component, component=c.component, status=Status.SKIP, title=c.component
            ),
        )
        row.duration_s = round(row.duration_s + c.duration_s, 4)
        if c.status == Status.PASS:
            passed.setdefault(c.component, []).append(c)
        if _RANK[c.status] > _RANK[row.status]:
            row.status, row.observed = c.status, c.observed
        elif row.status == c.status and not row.observed:
            row.observed = c.observed
    for comp, ok in passed.items():
        # A healthy component reads "check: value; check: value", not one bare number.
        if rows[comp].status == Status.PASS and len(ok) > 1:
            rows[comp].observed = "; ".join(f"{c.id}: {c.observed}" for c in ok)[:300]
    for f in findings:
        comp = f.component or FINDING_COMPONENT.get(f.code, "Job execution")
        row = rows.setdefault(
            comp, CheckResult(id=comp, component=comp, status=Status.PASS, title=comp)
        )
        status = Status.WARN if f.severity == "minor" else Status.FAIL
        if _RANK[status] > _RANK[row.status]:
            row.status = status
            row.observed = "; ".join(f.symptoms[:1])
        row.finding = row.finding or f.code
    return sorted(
        rows.values(),
        key=lambda r: COMPONENT_ORDER.index(r.component) if r.component in COMPONENT_ORDER else 99,
    )


def timeline_from(events: list[dict[str, Any]], limit: int = 30) -> list[TimelineEvent]:
    """The lifecycle of the most complete job among `events` (with the worker events),
    or the latest events when no job has more than one."""
    by_job: dict[str, set[str]] = {}
    for e in events:
        if e.get("aggregate_type") == "job":
            by_job.setdefault(str(e.get("aggregate_id")), set()).add(str(e.get("event_type")))
    best = max(by_job.items(), key=lambda kv: len(kv[1]), default=("", set()))
    if len(best[1]) > 1:
        # The job's own lifecycle, plus the worker events that change what can run.
        events = [
            e
            for e in events
            if str(e.get("aggregate_id")) == best[0]
            or e.get("event_type") in ("WorkerRegistered", "WorkerLost", "WorkerTerminated")
        ]
    ordered = sorted(events, key=lambda e: str(e.get("occurred_at", "")))[-limit:]
    return [
        TimelineEvent(
            occurred_at=str(e.get("occurred_at", "")),
            event_type=str(e.get("event_type", "")),
            aggregate_type=str(e.get("aggregate_type", "")),
            aggregate_id=str(e.get("aggregate_id", "")),
            actor=str(e.get("actor", "")),
        )
        for e in ordered
    ]


def verdict_of(
    findings: list[Finding], checks: list[CheckResult], scenarios: list[ScenarioRecord]
) -> Status:
    statuses = [c.status for c in checks] + [s.status for s in scenarios]
    statuses += [Status.WARN if f.severity == "minor" else Status.FAIL for f in findings]
    return (
        max(statuses, key=lambda s: _RANK[s], default=Status.PASS)
        if any(s in (Status.WARN, Status.FAIL) for s in statuses)
        else Status.PASS
    )


def redacted_checks(checks: list[CheckResult]) -> list[CheckResult]:
    return [
        c.model_copy(
            update={
                "observed": redact_text(c.observed),
                "evidence": [redact_text(x) for x in c.evidence],
                "params": {
                    k: redact_text(v) if isinstance(v, str) else v for k, v in c.params.items()
                },
            }
        )
        for c in checks
    ]


def redacted_scans(scans: list[LogScan]) -> list[LogScan]:
    """Copies of the scans with every URL password masked (log lines quote URLs)."""
    return [
        LogScan(
            source=s.source,
            path=s.path,
            total_lines=s.total_lines,
            error_lines=[redact_text(x) for x in s.error_lines],
            grpc_errors=[redact_text(x) for x in s.grpc_errors],
            notable_lines=[redact_text(x) for x in s.notable_lines],
        )
        for s in scans
    ]


def _finish(report: Report, findings: list[Finding]) -> Report:
    # Evidence quotes logs and errors: no password may reach the JSON either.
    for f in findings:
        f.params = {k: redact_text(v) if isinstance(v, str) else v for k, v in f.params.items()}
        f.symptoms = [redact_text(x) for x in f.symptoms]
        f.evidence = [redact_text(x) for x in f.evidence]

    code, params, sentence = root_cause(findings)
    report.findings = findings
    report.root_cause_code, report.root_cause_params, report.root_cause = code, params, sentence
    return report


# --- hodei-diagnose ------------------------------------------------------------------


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
) -> Report:
    checks = redacted_checks(checks)
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
        generated_at=now_iso(),
        version=hodei_version(),
        target=target,
        verdict=verdict_of(findings, checks, []),
        components=components_from(checks, findings),
        checks=checks,
        snapshot_after=snapshot,
        log_scans=redacted_scans(log_scans or []),
        scenarios=[canary_flow(canary)] if canary is not None else [],
        metrics=diagnose_metrics(checks, canary),
        checklist=diagnose_checklist(checks, snapshot, canary),
        timeline=timeline_from(
            events if events is not None else (snapshot.recent_events if snapshot else [])
        ),
        debug_commands=debug_commands(database_url, server_address, log_paths),
        duration_s=round(duration_s, 3),
    )
    return _finish(report, findings)


# --- pytest features/ ----------------------------------------------------------------


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
            CheckResult(
                id="events.recorded",
                component="Domain events",
                status=Status.PASS,
                title="events",
                observed=f"{after.events_total} domain events",
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
    checks = redacted_checks(list(checks or []))
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
            CheckResult(
                id="database.snapshot",
                component="PostgreSQL",
                status=Status.PASS,
                title="Database snapshot",
                observed=f"schema v{after.schema_version}",
            )
        )
    if target["server_info"]:
        comp_checks.append(
            CheckResult(
                id="server.info",
                component="gRPC server",
                status=Status.PASS,
                title="Server info",
                observed=f"version {target['server_info'].get('version')}",
            )
        )
    checklist = e2e_checklist(scenarios, before, after, scans, findings)
    comp_checks += observed_components(after, checklist)
    report = Report(
        kind="e2e",
        generated_at=getattr(run, "finished_at", "") or now_iso(),
        version=hodei_version(),
        target=target,
        verdict=verdict_of(findings, checks, scenarios),
        components=components_from(comp_checks, findings),
        scenarios=scenarios,
        checks=checks,
        snapshot_before=before,
        snapshot_after=after,
        log_scans=redacted_scans(scans),
        metrics=e2e_metrics(run, scenarios),
        checklist=checklist,
        timeline=timeline_from(after.recent_events if after else []),
        debug_commands=debug_commands(db_url, server, log_paths),
        duration_s=float(getattr(run, "duration_s", 0.0)),
    )
    return _finish(report, findings)
