"""Rules that turn observations into findings and one root-cause sentence.

Observations are check results (hodei-diagnose, or harness observations), scenario
records, database snapshots and log scans. A rule never looks at what was injected on
purpose (faults); it sees only what was measured, so the report diagnoses the same way
against a live deployment.
"""

from __future__ import annotations

from typing import Any

from hodei.durations import human_age
from hodei.report.catalogue import fill, finding_text
from hodei.report.model import (
    CheckResult,
    DatabaseSnapshot,
    Finding,
    LogScan,
    Phrase,
    ScenarioRecord,
    Status,
)
from hodei.report.precedence import BLOCKING, FINDING_COMPONENT, ROOT_CAUSE_ORDER


def _p(code: str, **params: Any) -> Phrase:
    return Phrase(code=code, params=params)


#: In an e2e run, PENDING this long with a READY worker means a stalled dispatcher.
E2E_PENDING_AGE_S = 10.0
E2E_OUTBOX_AGE_S = 10.0


def _severity(code: str, status: Status) -> str:
    if status == Status.WARN:
        return "minor"
    return "critical" if code in BLOCKING else "major"


def findings_from_checks(checks: list[CheckResult]) -> list[Finding]:
    """One finding per code among WARN/FAIL checks (evidence merged)."""
    by_code: dict[str, Finding] = {}
    for c in checks:
        if c.status not in (Status.WARN, Status.FAIL) or not c.finding:
            continue
        f = by_code.get(c.finding)
        if f is None:
            # The check's component: the summary must not blame a component whose own
            # checks passed (queue.backlog WARN is the queue's, not throughput's).
            f = Finding(
                code=c.finding,
                component=c.component,
                severity=_severity(c.finding, c.status),
                params=dict(c.params),
            )
            by_code[c.finding] = f
        else:
            if c.status == Status.FAIL:
                f.severity = _severity(c.finding, Status.FAIL)
            # A later check may have seen more (the canary stuck PENDING after the
            # dispatcher check found an empty queue): fill what the first left empty.
            for k, v in c.params.items():
                if f.params.get(k) in (None, 0, "", "n/a", "?"):
                    f.params[k] = v
        f.symptoms.append(f"[{c.id}] {c.observed}")
        f.evidence.extend(c.evidence)
    return sorted(by_code.values(), key=_rank)


def _rank(f: Finding) -> tuple[int, int]:
    sev = {"critical": 0, "major": 1, "minor": 2}.get(f.severity, 3)
    order = ROOT_CAUSE_ORDER.index(f.code) if f.code in ROOT_CAUSE_ORDER else 99
    return (sev, order)


def root_cause(findings: list[Finding]) -> tuple[str, dict[str, Any], str]:
    """(code, params, English sentence) of the finding that explains the others."""
    if not findings:
        return "", {}, ""
    serious = [f for f in findings if f.severity != "minor"] or findings
    primary = min(
        serious, key=lambda f: ROOT_CAUSE_ORDER.index(f.code) if f.code in ROOT_CAUSE_ORDER else 99
    )
    return (
        primary.code,
        primary.params,
        fill(finding_text(primary.code, "en").root_cause, primary.params),
    )


# --- e2e observations ---------------------------------------------------------------


def _live_servers(snap: DatabaseSnapshot | None) -> list[dict[str, Any]]:
    if snap is None:
        return []
    return [s for s in snap.servers if not s.get("stopped_at")]


def _ready(snap: DatabaseSnapshot | None) -> int:
    return int(snap.workers_by_state.get("READY", 0)) if snap else 0


def dispatcher_params(snap: DatabaseSnapshot | None, pending_age: float | None) -> dict[str, Any]:
    servers = _live_servers(snap)
    ages = [s.get("last_cycle_age_s") for s in servers if s.get("dispatcher_enabled")]
    known = [a for a in ages if a is not None]
    pending = snap.jobs_by_state.get("PENDING", 0) if snap else 0
    return {
        "pending": pending,
        "pending_age": human_age(pending_age),
        "ready": _ready(snap),
        "cycle_age": human_age(min(known)) if known else "ever",
        "servers": len(servers),
    }


def snapshot_findings(
    snap: DatabaseSnapshot | None, before: DatabaseSnapshot | None = None
) -> list[Finding]:
    """What a database snapshot alone establishes (used for e2e runs)."""
    if snap is None:
        return []
    out: list[Finding] = []
    servers = _live_servers(snap)
    age = snap.oldest_pending_age_s
    if servers and not any(s.get("dispatcher_enabled") for s in servers):
        out.append(
            Finding(
                code="DISPATCHER_DISABLED",
                component="Dispatcher",
                severity="critical",
                params=dispatcher_params(snap, age),
                symptoms=[f"{len(servers)} live server(s) with dispatcher_enabled = false"],
                evidence=[
                    f"server_status {s.get('server_id')}: dispatcher_enabled="
                    f"{s.get('dispatcher_enabled')}"
                    for s in servers
                ],
                symptom_phrases=[_p("SYM_DISPATCHER_OFF", servers=len(servers))],
                evidence_phrases=[
                    _p(
                        "EV_SERVER_DISPATCHER",
                        server=s.get("server_id"),
                        enabled=s.get("dispatcher_enabled"),
                    )
                    for s in servers
                ],
            )
        )
    elif age is not None and age > E2E_PENDING_AGE_S and _ready(snap):
        out.append(
            Finding(
                code="DISPATCHER_STALLED",
                component="Dispatcher",
                severity="critical",
                params=dispatcher_params(snap, age),
                symptoms=[
                    f"oldest PENDING job {human_age(age)} old with {_ready(snap)} READY worker(s)"
                ],
                evidence=[
                    f"queue depth {snap.queue_depth}, oldest {human_age(snap.queue_oldest_age_s)}"
                ],
                symptom_phrases=[
                    _p("SYM_PENDING_OLD", age=human_age(age), ready=_ready(snap)),
                ],
                evidence_phrases=[
                    _p(
                        "EV_QUEUE",
                        depth=snap.queue_depth,
                        age=human_age(snap.queue_oldest_age_s),
                    )
                ],
            )
        )
    out_age = snap.outbox_oldest_unpublished_age_s
    relay = [s.get("outbox_relay_enabled") for s in servers]
    relay_off = bool(servers) and not any(relay) and snap.outbox_unpublished > 0
    if relay_off or (out_age is not None and out_age > E2E_OUTBOX_AGE_S):
        out.append(
            Finding(
                code="OUTBOX_BACKLOG",
                component="Outbox",
                severity="major",
                params={"count": snap.outbox_unpublished, "age": human_age(out_age)},
                symptoms=[
                    f"{snap.outbox_unpublished} unpublished outbox row(s), "
                    f"oldest {human_age(out_age)}"
                ],
                evidence=[f"outbox_relay_enabled per live server: {relay}"],
                symptom_phrases=[
                    _p(
                        "SYM_OUTBOX_UNPUBLISHED",
                        count=snap.outbox_unpublished,
                        age=human_age(out_age),
                    )
                ],
                evidence_phrases=[_p("EV_RELAY", relay=relay)],
            )
        )
    new_events = snap.events_total - (before.events_total if before else 0)
    new_outbox = snap.outbox_total - (before.outbox_total if before else 0)
    if new_events > 0 and new_outbox == 0:
        out.append(
            Finding(
                code="OUTBOX_EMPTY",
                component="Outbox",
                severity="major",
                params={"events": new_events, "outbox": new_outbox, "window": "run"},
                symptoms=[f"{new_events} domain event(s), {new_outbox} outbox rows"],
                symptom_phrases=[_p("SYM_EVENTS_OUTBOX", events=new_events, outbox=new_outbox)],
            )
        )
    return out


def blocking_finding(snap: DatabaseSnapshot | None) -> Finding | None:
    """The critical finding of a snapshot that stops every job from running (the
    dispatcher switched off or stalled), or None. The e2e harness asks it while a
    scenario waits, to stop waiting once the cause is known."""
    blocking = [
        f for f in snapshot_findings(snap) if f.code in BLOCKING and f.severity == "critical"
    ]
    return min(blocking, key=_rank) if blocking else None


def scan_findings(scans: list[LogScan]) -> list[Finding]:
    errors = [(s.source, e) for s in scans for e in s.grpc_errors]
    if not errors:
        return []
    sources = sorted({src for src, _ in errors})
    return [
        Finding(
            code="GRPC_STREAM_ERRORS",
            component="Logs",
            severity="major",
            params={
                "count": len(errors),
                "sources": ", ".join(sources),
                "sample": errors[0][1][-120:],
            },
            symptoms=[f"{len(errors)} gRPC stream error line(s)"],
            evidence=[f"{src}: {line}" for src, line in errors[:8]],
            symptom_phrases=[_p("SYM_GRPC_ERRORS", count=len(errors))],
        )
    ]


def _failed_step(s: ScenarioRecord) -> tuple[str, str]:
    for step in s.steps:
        if step.status == Status.FAIL:
            return step.name, step.error or s.error
    return "", s.error


def _classify(
    step: str, error: str, s: ScenarioRecord, snap: DatabaseSnapshot | None, codes: set[str]
) -> tuple[str, dict[str, Any]]:
    """The finding a failed step points at, from the words of its step and error."""
    text = f"{step} {error}".lower()
    if "pending" in text:
        if "DISPATCHER_DISABLED" in codes:
            return "DISPATCHER_DISABLED", dispatcher_params(
                snap, snap.oldest_pending_age_s if snap else None
            )
        params = dispatcher_params(snap, snap.oldest_pending_age_s if snap else None)
        params["server"] = ""
        return ("DISPATCHER_STALLED" if _ready(snap) else "NO_READY_WORKERS"), params
    if "outbox" in text:
        return "OUTBOX_BACKLOG", {
            "count": snap.outbox_unpublished if snap else "?",
            "age": human_age(snap.outbox_oldest_unpublished_age_s if snap else None),
        }
    if "log" in text and ("line" in text or "stream" in text or "stdout" in text):
        return "LOGS_NOT_STREAMED", {
            "received": int(s.metrics.get("log_lines_received", 0)),
            "expected": int(s.metrics.get("log_lines_expected", 0)) or "?",
        }
    # The error as a phrase: the root-cause sentence then reads in the report's language.
    return "SCENARIO_FAILED", {"scenario": s.name, "step": step, "error": _error_phrase(s)}


def _is_wait(error: str) -> bool:
    """The step gave up waiting (a timeout, or a wait ended by a known root cause)."""
    text = error.lower()
    return "timed out" in text or "timeoutexpired" in text or "stopped waiting" in text


def scenario_findings(
    scenarios: list[ScenarioRecord], snap: DatabaseSnapshot | None, found: list[Finding]
) -> list[Finding]:
    """Failed scenarios, each attributed to the component its failing step names; a
    failure that an existing finding already explains becomes one more symptom of it,
    and the scenario is marked `caused_by` that finding."""
    out: list[Finding] = []
    for s in scenarios:
        if s.status != Status.FAIL:
            continue
        step, error = _failed_step(s)
        symptom = f'scenario "{s.name}" failed at "{step}": {error}'[:400]
        phrase = _p("SYM_SCENARIO_FAILED", scenario=s.name, step=step, error=_error_phrase(s))
        existing = {f.code: f for f in found + out}
        code, params = _classify(step, error, s, snap, set(existing))
        if s.caused_by:
            # The harness stopped waiting because of this cause: that is the reason.
            code = s.caused_by
            if code not in existing:
                params = dispatcher_params(snap, snap.oldest_pending_age_s if snap else None)
        elif code == "SCENARIO_FAILED" and _is_wait(error):
            # A wait ran out while a critical cause blocks every job: that cause.
            blocking = [f for f in found if f.code in BLOCKING and f.severity == "critical"]
            if blocking:
                code = min(blocking, key=_rank).code
        if code in existing and code != "SCENARIO_FAILED":
            existing[code].symptoms.append(symptom)
            existing[code].symptom_phrases.append(phrase)
            s.caused_by = code
            continue
        out.append(
            Finding(
                code=code,
                component=FINDING_COMPONENT.get(code, "Job execution"),
                severity=_severity(code, Status.FAIL),
                params=params,
                symptoms=[symptom],
                evidence=[f"feature {s.feature}, {s.duration_s:.2f} s"],
                symptom_phrases=[phrase],
                evidence_phrases=[
                    _p("EV_FEATURE", feature=s.feature, seconds=f"{s.duration_s:.2f}")
                ],
            )
        )
        if code != "SCENARIO_FAILED":
            s.caused_by = code
    return out


def _error_phrase(s: ScenarioRecord) -> dict[str, Any]:
    """The failing step's error as a phrase: the wait's own when the harness gave one."""
    for step in s.steps:
        if step.status == Status.FAIL:
            said = step.error_phrase
            if said is not None and said.code == "WAIT_GAVE_UP":
                # The cause is the finding this symptom is listed under: not again.
                params = {k: said.params.get(k) for k in ("waited", "what")}
                return {"code": "WAIT_BLOCKED", "params": params}
            if said is not None:
                return said.model_dump()
            return {"code": "TEXT", "params": {"text": (step.error or s.error)[:300]}}
    return {"code": "TEXT", "params": {"text": s.error[:300]}}


def e2e_findings(
    scenarios: list[ScenarioRecord],
    before: DatabaseSnapshot | None,
    after: DatabaseSnapshot | None,
    scans: list[LogScan],
    checks: list[CheckResult],
) -> list[Finding]:
    found = findings_from_checks(checks)
    codes = {f.code for f in found}
    for f in snapshot_findings(after, before) + scan_findings(scans):
        if f.code not in codes:
            found.append(f)
            codes.add(f.code)
    found += scenario_findings(scenarios, after, found)
    return sorted(found, key=_rank)
