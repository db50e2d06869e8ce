"""The e2e report's per-component view: every component of the platform as working or
failing (never silently left out), and the seed's per-component timing table (server
start, worker registration, job creation, dispatch, execution, log streaming).

Each line carries its English text and a phrase (hodei.report.model.Phrase) that the
report renders in its own language.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hodei.report.catalogue import say
from hodei.report.model import (
    ChecklistItem,
    CheckResult,
    DatabaseSnapshot,
    Finding,
    Metric,
    Phrase,
    ScenarioRecord,
    Status,
)

#: The component each checklist item vouches for.
CHECKLIST_COMPONENT = {
    "DISPATCHER_CYCLES": "Dispatcher",
    "JOBS_LEAVE_PENDING": "Dispatcher",
    "WORKERS_RECEIVE_JOBS": "Job execution",
    "LOGS_REACH_CLI": "Log streaming",
    "JOBS_COMPLETE": "Job execution",
    "NO_GRPC_ERRORS": "Logs",
    "THROUGHPUT_STABLE": "Throughput",
    "OUTBOX_PUBLISHED": "Outbox",
}

#: The components a scenario's tags exercise: a failed scenario leaves them failing.
TAG_COMPONENTS = {
    "health": ("PostgreSQL", "gRPC server"),
    "workers": ("Workers",),
    "lifecycle": ("Dispatcher", "Job execution", "Outbox"),
    "logs": ("Log streaming",),
    "failure": ("Job execution",),
    "job_timeout": ("Job execution",),
    "cancel": ("Job execution",),
    "recovery": ("Job execution",),
    "keepalive": ("Logs",),
    "throughput": ("Throughput",),
}

#: Every component an e2e run speaks for, in the summary's order.
E2E_COMPONENTS = [
    "PostgreSQL",
    "gRPC server",
    "Workers",
    "Job queue",
    "Dispatcher",
    "Job execution",
    "Domain events",
    "Outbox",
    "Log streaming",
    "Throughput",
    "Logs",
]


def phrase(code: str, **params: Any) -> tuple[str, Phrase]:
    """(English sentence, phrase) of a catalogue phrase."""
    p = Phrase(code=code, params=params)
    return say(p, "en"), p


def _line(cid: str, component: str, status: Status, code: str, **params: Any) -> CheckResult:
    text, p = phrase(code, **params)
    return CheckResult(
        id=cid,
        component=component,
        status=status,
        title=component,
        observed=text,
        observed_phrase=p,
    )


def _delta(after: DatabaseSnapshot | None, before: DatabaseSnapshot | None, key: str) -> int:
    if after is None:
        return 0
    return after.events_by_type.get(key, 0) - (before.events_by_type.get(key, 0) if before else 0)


def problem_numbers(findings: list[Finding]) -> dict[str, int]:
    """Finding code -> its "Problem N" number in the report (findings in report order)."""
    return {f.code: i for i, f in reversed(list(enumerate(findings, 1)))}


def component_lines(
    scenarios: list[ScenarioRecord],
    before: DatabaseSnapshot | None,
    after: DatabaseSnapshot | None,
    checklist: list[ChecklistItem],
    findings: list[Finding],
    server_info: dict[str, Any],
) -> list[CheckResult]:
    """One observation per component: PASS where the run saw it work, FAIL where a
    scenario exercising it failed (with the problem that caused it), SKIP only where
    nothing exercised it (a -k selection). Findings are laid over these lines later
    (assembly.components_from)."""
    rows: list[CheckResult] = []
    numbers = problem_numbers(findings)
    if after is not None:
        rows.append(
            _line(
                "database.snapshot",
                "PostgreSQL",
                Status.PASS,
                "COMP_DATABASE",
                version=after.schema_version,
                jobs=after.jobs_total,
            )
        )
    if server_info:
        rows.append(
            _line(
                "server.info",
                "gRPC server",
                Status.PASS,
                "COMP_SERVER",
                version=server_info.get("version"),
            )
        )
    live = after.workers_by_state if after else {}
    up = live.get("READY", 0) + live.get("BUSY", 0)
    if up:
        rows.append(_line("workers.live", "Workers", Status.PASS, "COMP_WORKERS", count=up))
    created = _delta(after, before, "JobCreated")
    if created > 0:
        rows.append(_line("queue.enqueued", "Job queue", Status.PASS, "COMP_QUEUE", count=created))
    if after is not None and after.events_total:
        rows.append(
            _line(
                "events.recorded",
                "Domain events",
                Status.PASS,
                "COMP_EVENTS",
                count=after.events_total,
            )
        )
    ticked: dict[str, bool] = {}
    for item in checklist:
        comp = CHECKLIST_COMPONENT.get(item.code)
        if comp is not None:
            ticked[comp] = ticked.get(comp, True) and item.checked
            if item.checked:
                rows.append(
                    CheckResult(
                        id=f"checklist.{item.code.lower()}",
                        component=comp,
                        status=Status.PASS,
                        title=item.code,
                        observed=item.evidence,
                        observed_phrase=item.evidence_phrase,
                    )
                )
    failed: dict[str, list[ScenarioRecord]] = {}
    passed: dict[str, int] = {}
    for s in scenarios:
        for comp in {c for tag in s.tags for c in TAG_COMPONENTS.get(tag, ())}:
            if s.status == Status.FAIL:
                failed.setdefault(comp, []).append(s)
            elif s.status == Status.PASS:
                passed[comp] = passed.get(comp, 0) + 1
    for comp, count in passed.items():
        if comp not in failed:
            rows.append(
                _line(f"scenarios.{comp}", comp, Status.PASS, "COMP_SCENARIOS_PASSED", count=count)
            )
    for comp in E2E_COMPONENTS:
        if comp in failed and not ticked.get(comp, False):
            causes = sorted({numbers[s.caused_by] for s in failed[comp] if s.caused_by in numbers})
            if causes:
                rows.append(
                    _line(
                        f"scenarios.{comp}",
                        comp,
                        Status.FAIL,
                        "COMP_CAUSED_BY",
                        count=len(failed[comp]),
                        problems=", ".join(str(n) for n in causes),
                    )
                )
            else:
                rows.append(
                    _line(
                        f"scenarios.{comp}",
                        comp,
                        Status.FAIL,
                        "COMP_SCENARIOS_FAILED",
                        count=len(failed[comp]),
                    )
                )
        elif not any(r.component == comp for r in rows):
            rows.append(_line(f"unseen.{comp}", comp, Status.SKIP, "COMP_NOT_EXERCISED"))
    return rows


# --- the seed's timing table -------------------------------------------------------


def _at(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace(" ", "T").replace("+00", "+00:00"))
    except ValueError:
        return None


def _between(events: list[dict[str, Any]], first: str, then: str) -> float | None:
    """Seconds from the first `first` event to the first `then` event of the same job."""
    seen: dict[str, datetime] = {}
    for e in events:
        when = _at(e.get("occurred_at"))
        if when is None:
            continue
        if e.get("event_type") == first:
            seen.setdefault(str(e.get("aggregate_id")), when)
        elif e.get("event_type") == then and str(e.get("aggregate_id")) in seen:
            return (when - seen[str(e.get("aggregate_id"))]).total_seconds()
    return None


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "N/A"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def timing_rows(
    timings: dict[str, float],
    measured: dict[str, float],
    events: list[dict[str, Any]],
    components: list[CheckResult],
) -> list[Metric]:
    """The seed's table: component | status | response time | observations, from what
    the run measured (N/A and the component's status when it could not be)."""
    status = {c.component: c.status for c in components}

    def row(name: str, comp: str, seconds: float | None, code: str, **params: Any) -> Metric:
        text, p = phrase(code, **params)
        st = status.get(comp, Status.SKIP)
        if seconds is None and st == Status.PASS:
            st = Status.SKIP
        return Metric(
            component=name,
            status=st,
            response_time=_fmt(seconds),
            observations=text,
            observations_phrase=p,
        )

    db_ms = measured.get("db_roundtrip_ms")
    rows = [
        row("PostgreSQL", "PostgreSQL", db_ms / 1000 if db_ms else None, "TIME_DB"),
        row("Server start", "gRPC server", timings.get("server_start_s"), "TIME_SERVER_START"),
        row(
            "Worker registration",
            "Workers",
            timings.get("workers_ready_s"),
            "TIME_WORKERS",
            count=int(timings.get("workers", 0)),
        ),
        row(
            "Job creation",
            "Job queue",
            (measured.get("queue_rpc_ms") or 0) / 1000 or None,
            "TIME_QUEUE_RPC",
        ),
        row(
            "Job dispatch",
            "Dispatcher",
            _between(events, "JobCreated", "JobAssigned"),
            "TIME_DISPATCH",
        ),
        row(
            "Job start",
            "Job execution",
            _between(events, "JobAssigned", "JobStarted"),
            "TIME_START",
        ),
        row(
            "Job execution",
            "Job execution",
            _between(events, "JobStarted", "JobSucceeded"),
            "TIME_EXECUTION",
        ),
        row("Log streaming", "Log streaming", measured.get("cli_job_run_s"), "TIME_CLI_RUN"),
    ]
    rate = measured.get("jobs_per_min")
    rows.append(
        row(
            "Throughput",
            "Throughput",
            measured.get("burst_wall_s"),
            "TIME_THROUGHPUT",
            rate=f"{rate:.0f}" if rate else "N/A",
            jobs=int(measured.get("burst_jobs", 0)),
        )
    )
    return rows
