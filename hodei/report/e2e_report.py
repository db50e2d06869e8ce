"""The report of a `pytest features/` run: its scenarios, the snapshots before and
after, the processes' logs, and the harness's own observations."""

from __future__ import annotations

from typing import Any

from hodei.redaction import redact, redact_text
from hodei.report import assembly
from hodei.report.charts import burst_charts
from hodei.report.checklist import e2e_checklist
from hodei.report.debug_commands import commands_for, debug_commands
from hodei.report.e2e_components import component_lines, timing_rows
from hodei.report.model import (
    CheckResult,
    LogScan,
    Metric,
    Phrase,
    Report,
    ScenarioRecord,
    Status,
)
from hodei.report.rules import e2e_findings


def e2e_metrics(run: Any, scenarios: list[ScenarioRecord]) -> list[Metric]:
    """One row per scenario: its status, its time, its error or its figures."""
    rows: list[Metric] = []
    for s in scenarios:
        extra = ", ".join(f"{k}={v:g}" for k, v in s.metrics.items())
        first = s.error.splitlines()[0][:160] if s.error else ""
        obs = first or extra or f"{len(s.steps)} step(s)"
        if s.error and extra:
            obs = f"{obs} ({extra})"
        step_said = _step_phrase(s)
        said: Phrase
        if s.caused_by:
            said = Phrase(code="OBS_CAUSED_BY", params={"code": s.caused_by})
        elif first and step_said is not None:
            said = step_said
        elif first:
            said = Phrase(code="TEXT", params={"text": redact_text(obs)})
        elif extra:
            said = Phrase(code="TEXT", params={"text": extra})
        else:
            said = Phrase(code="OBS_STEPS", params={"count": len(s.steps)})
        rows.append(
            Metric(
                component=s.name,
                status=s.status,
                response_time=f"{s.duration_s:.2f} s",
                observations=redact_text(obs),
                observations_phrase=said,
            )
        )
    return rows


def _step_phrase(s: ScenarioRecord) -> Phrase | None:
    """The failing step's error as a phrase, when the harness gave one."""
    return next((st.error_phrase for st in s.steps if st.status == Status.FAIL), None)


def build_e2e_report(run: Any, *, checks: list[CheckResult] | None = None) -> Report:
    """The report of a `pytest features/` run (see docs/report-catalogue.md for `run`)."""
    scenarios = [
        s.model_copy(
            update={
                "error": redact_text(s.error),
                "steps": [
                    st.model_copy(
                        update={
                            "error": redact_text(st.error),
                            "error_phrase": assembly.redacted_phrase(st.error_phrase),
                        }
                    )
                    for st in s.steps
                ],
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
    # Marks each failed scenario `caused_by` the finding that explains it.
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
    checklist = e2e_checklist(scenarios, before, after, scans, findings)
    comp_checks = list(checks) + component_lines(
        scenarios, before, after, checklist, findings, target["server_info"]
    )
    components = assembly.components_from(comp_checks, findings)
    measured: dict[str, float] = {}
    for s in scenarios:
        measured.update(s.metrics)
    lifecycle = list(getattr(run, "lifecycle_events", None) or [])
    report = Report(
        kind="e2e",
        generated_at=getattr(run, "finished_at", "") or assembly.now_iso(),
        version=assembly.hodei_version(),
        target=target,
        verdict=assembly.verdict_of(findings, checks, scenarios),
        components=components,
        scenarios=scenarios,
        checks=checks,
        snapshot_before=before,
        snapshot_after=after,
        log_scans=assembly.redacted_scans(scans),
        metrics=e2e_metrics(run, scenarios),
        checklist=checklist,
        # The @lifecycle scenario's own job (never the database's latest events: those
        # are the last burst job's); the latest events only for a run without scenarios.
        timeline=assembly.timeline_from(
            lifecycle or ([] if scenarios or after is None else after.recent_events)
        ),
        debug_commands=debug_commands(db_url, server, log_paths),
        duration_s=float(getattr(run, "duration_s", 0.0)),
        timings=timing_rows(
            dict(getattr(run, "timings", {}) or {}), measured, lifecycle, components
        ),
        action_commands={f.code: commands_for(f.code, db_url, server, log_paths) for f in findings},
        deployment_note=getattr(run, "deployment_note", None),
        run_id=str(getattr(run, "run_id", "") or ""),
        charts=[chart for s in scenarios if s.job_times for chart in burst_charts(s.job_times)],
    )
    return assembly.finish(report, findings)
