"""What the e2e and the diagnose reports share once their findings are known: the
executive summary (one line per component), the verdict, the lifecycle timeline, the
redaction of everything quoted as evidence, and the root cause."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hodei.redaction import redact_text
from hodei.report.model import (
    CheckResult,
    Finding,
    LogScan,
    Phrase,
    Report,
    ScenarioRecord,
    Status,
    TimelineEvent,
)
from hodei.report.precedence import FINDING_COMPONENT
from hodei.report.rules import root_cause

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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def hodei_version() -> str:
    try:
        from importlib.metadata import version

        return version("hodei")
    except Exception:
        return "unknown"


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
            row.observed_phrase = c.observed_phrase
        elif row.status == c.status and not row.observed:
            row.observed, row.observed_phrase = c.observed, c.observed_phrase
    for comp, ok in passed.items():
        # A healthy component reads "check: value; check: value", not one bare number.
        if rows[comp].status == Status.PASS and len(ok) > 1:
            if all(c.observed_phrase is not None for c in ok):
                rows[comp].observed = "; ".join(c.observed for c in ok)[:300]
                rows[comp].observed_phrase = Phrase(
                    code="LIST", params={"items": [c.observed_phrase for c in ok]}
                )
            else:
                rows[comp].observed = "; ".join(f"{c.id}: {c.observed}" for c in ok)[:300]
                rows[comp].observed_phrase = None
    for f in findings:
        comp = f.component or FINDING_COMPONENT.get(f.code, "Job execution")
        row = rows.setdefault(
            comp, CheckResult(id=comp, component=comp, status=Status.PASS, title=comp)
        )
        status = Status.WARN if f.severity == "minor" else Status.FAIL
        # The finding's own symptom says more than an observation of equal rank.
        if _RANK[status] > _RANK[row.status] or (status == row.status and not row.finding):
            row.status = status
            row.observed = "; ".join(f.symptoms[:1])
            row.observed_phrase = f.symptom_phrases[0] if f.symptom_phrases else None
        row.finding = row.finding or f.code
    return sorted(
        rows.values(),
        key=lambda r: COMPONENT_ORDER.index(r.component) if r.component in COMPONENT_ORDER else 99,
    )


#: Worker events that change what can run, shown beside a job's lifecycle: the
#: scaler's decisions (workers on demand) among them.
_CAPACITY_EVENTS = (
    "WorkerRegistered",
    "WorkerLost",
    "WorkerTerminated",
    "WorkerProvisioned",
    "ProvisioningFailed",
    "WorkerScaledDown",
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
            or e.get("event_type") in _CAPACITY_EVENTS
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


def redacted_value(value: Any) -> Any:
    """`value` with every URL password masked, through dicts and lists (phrase params)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redacted_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted_value(v) for v in value]
    return value


def redacted_phrase(phrase: Phrase | None) -> Phrase | None:
    if phrase is None:
        return None
    return Phrase(code=phrase.code, params=redacted_value(phrase.params))


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


def finish(report: Report, findings: list[Finding]) -> Report:
    """`report` with its findings (redacted) and the root cause they point at."""
    # Evidence quotes logs and errors: no password may reach the JSON either.
    for f in findings:
        f.params = redacted_value(f.params)
        f.symptoms = [redact_text(x) for x in f.symptoms]
        f.evidence = [redact_text(x) for x in f.evidence]

    code, params, sentence = root_cause(findings)
    report.findings = findings
    report.root_cause_code, report.root_cause_params, report.root_cause = code, params, sentence
    return report
