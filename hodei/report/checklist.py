"""The post-fix checklist, each item ticked only from what was observed.

An item that could not be observed (no log file scanned, no canary run) stays
unticked and says why: an unverified item is not a verified one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hodei.durations import human_age
from hodei.report.model import (
    ChecklistItem,
    CheckResult,
    DatabaseSnapshot,
    Finding,
    LogScan,
    Phrase,
    ScenarioRecord,
    Status,
)


def _p(code: str, **params: Any) -> Phrase:
    return Phrase(code=code, params=params)


ITEMS = [
    "DISPATCHER_CYCLES",
    "JOBS_LEAVE_PENDING",
    "WORKERS_RECEIVE_JOBS",
    "LOGS_REACH_CLI",
    "JOBS_COMPLETE",
    "NO_GRPC_ERRORS",
    "THROUGHPUT_STABLE",
    "OUTBOX_PUBLISHED",
]


def _delta(after: dict[str, int], before: dict[str, int] | None, *keys: str) -> int:
    return sum(after.get(k, 0) - (before or {}).get(k, 0) for k in keys)


def _cycle_interval(before: DatabaseSnapshot | None, after: DatabaseSnapshot | None) -> str:
    """Average time between dispatcher cycles over the run, from server_status counters."""
    if after is None:
        return "X s"
    live = [s for s in after.servers if s.get("dispatcher_enabled") and not s.get("stopped_at")]
    if not live:
        return "X s"
    if before is not None:
        prev = {s.get("server_id"): s.get("dispatcher_cycles") or 0 for s in before.servers}
        from datetime import datetime

        try:
            elapsed = (
                datetime.fromisoformat(after.taken_at) - datetime.fromisoformat(before.taken_at)
            ).total_seconds()
        except ValueError:
            elapsed = 0.0
        cycles = sum(
            (s.get("dispatcher_cycles") or 0) - prev.get(s.get("server_id"), 0) for s in live
        )
        if cycles > 0 and elapsed > 0:
            return human_age(elapsed / cycles)
    ages = [float(s["last_cycle_age_s"]) for s in live if s.get("last_cycle_age_s") is not None]
    return f"≤ {human_age(min(ages))}" if ages else "X s"


def e2e_checklist(
    scenarios: list[ScenarioRecord],
    before: DatabaseSnapshot | None,
    after: DatabaseSnapshot | None,
    scans: list[LogScan],
    findings: list[Finding],
) -> list[ChecklistItem]:
    codes = {f.code for f in findings}
    items: list[ChecklistItem] = []
    ev_after = after.events_by_type if after else {}
    ev_before = before.events_by_type if before else None
    passed = [s for s in scenarios if s.status == Status.PASS]

    def add(
        code: str,
        ok: bool,
        evidence: str,
        params: dict[str, Any] | None = None,
        said: Phrase | None = None,
    ) -> None:
        items.append(
            ChecklistItem(
                code=code, checked=ok, evidence=evidence, params=params or {}, evidence_phrase=said
            )
        )

    live = [s for s in (after.servers if after else []) if not s.get("stopped_at")]
    enabled = [s for s in live if s.get("dispatcher_enabled")]
    recent = [s for s in enabled if (s.get("last_cycle_age_s") or 1e9) <= 15.0]
    interval = _cycle_interval(before, after)
    cycling = bool(recent) and not codes & {"DISPATCHER_STALLED", "DISPATCHER_DISABLED"}
    add(
        "DISPATCHER_CYCLES",
        cycling,
        f"{len(enabled)}/{len(live)} live server(s) dispatching; cycle every {interval}",
        {"interval": interval if cycling else "X s"},
        _p("CK_DISPATCHING", enabled=len(enabled), live=len(live), interval=interval),
    )
    assigned = _delta(ev_after, ev_before, "JobAssigned")
    add(
        "JOBS_LEAVE_PENDING",
        assigned > 0 and "DISPATCHER_STALLED" not in codes,
        f"{assigned} JobAssigned event(s) during the run",
        said=_p("CK_EVENTS", count=assigned, event="JobAssigned"),
    )
    started = _delta(ev_after, ev_before, "JobStarted")
    add(
        "WORKERS_RECEIVE_JOBS",
        started > 0,
        f"{started} JobStarted event(s) during the run",
        said=_p("CK_EVENTS", count=started, event="JobStarted"),
    )
    streamed = [s for s in passed if s.metrics.get("log_lines_received", 0) > 0]
    add(
        "LOGS_REACH_CLI",
        bool(streamed) and "LOGS_NOT_STREAMED" not in codes,
        f"{len(streamed)} passed scenario(s) received log lines"
        if streamed
        else "no scenario observed log lines on the CLI",
        said=_p("CK_LOGS", count=len(streamed)) if streamed else _p("CK_NO_LOGS"),
    )
    finished = _delta(ev_after, ev_before, "JobSucceeded", "JobFailed")
    add(
        "JOBS_COMPLETE",
        finished > 0,
        f"{finished} job(s) SUCCEEDED/FAILED during the run",
        said=_p("CK_FINISHED", count=finished),
    )
    grpc = sum(len(s.grpc_errors) for s in scans)
    add(
        "NO_GRPC_ERRORS",
        bool(scans) and grpc == 0,
        f"{grpc} gRPC error line(s) in {len(scans)} log(s)" if scans else "no log scanned",
        said=_p("CK_GRPC", count=grpc, logs=len(scans)) if scans else _p("CK_NO_SCAN"),
    )
    rates = [s.metrics["jobs_per_min"] for s in passed if s.metrics.get("jobs_per_min", 0) > 0]
    add(
        "THROUGHPUT_STABLE",
        bool(rates),
        f"measured {', '.join(f'{r:.0f}' for r in rates)} jobs/min"
        if rates
        else "no throughput measured",
        said=_p("CK_RATES", rates=", ".join(f"{r:.0f}" for r in rates))
        if rates
        else _p("CK_NO_RATE"),
    )
    published = (after.outbox_total - after.outbox_unpublished) if after else 0
    oldest = after.outbox_oldest_unpublished_age_s if after else None
    add(
        "OUTBOX_PUBLISHED",
        published > 0 and not codes & {"OUTBOX_BACKLOG", "OUTBOX_EMPTY"},
        f"{published} outbox row(s) published, oldest unpublished {human_age(oldest)}",
        said=_p("CK_OUTBOX", count=published, age=human_age(oldest)),
    )
    return items


def diagnose_checklist(
    checks: list[CheckResult], snap: DatabaseSnapshot | None, canary: Any = None
) -> list[ChecklistItem]:
    by_id = {c.id: c for c in checks}

    def ok(*ids: str) -> bool:
        return all(i in by_id and by_id[i].status == Status.PASS for i in ids)

    def why(*ids: str) -> str:
        return "; ".join(
            f"{i}: {by_id[i].status.value} ({by_id[i].observed})" if i in by_id else f"{i}: not run"
            for i in ids
        )

    events = snap.events_by_type if snap else {}
    jobs = snap.jobs_by_state if snap else {}
    canary_state = getattr(canary, "state", "")
    items: list[ChecklistItem] = []
    add: Callable[..., None] = lambda code, good, ev, params=None: items.append(  # noqa: E731
        ChecklistItem(code=code, checked=bool(good), evidence=ev, params=params or {})
    )
    live = [
        s
        for s in (snap.servers if snap else [])
        if not s.get("stopped_at") and s.get("dispatcher_enabled")
    ]
    ages = [s["last_cycle_age_s"] for s in live if s.get("last_cycle_age_s") is not None]
    interval = f"≤ {human_age(min(ages))}" if ages else "X s"
    cycling = ok("dispatcher.progress") and bool(ages) and min(ages) <= 15.0
    add(
        "DISPATCHER_CYCLES",
        cycling,
        why("dispatcher.progress"),
        {"interval": interval if cycling else "X s"},
    )
    dispatched = canary_state in ("RUNNING", "SUCCEEDED", "FAILED") or events.get("JobAssigned")
    add(
        "JOBS_LEAVE_PENDING",
        ok("dispatcher.progress", "consistency.pending_unqueued") and dispatched,
        why("dispatcher.progress", "consistency.pending_unqueued")
        + f"; JobAssigned events: {events.get('JobAssigned', 0)}",
    )
    started = canary_state in ("SUCCEEDED", "FAILED") or events.get("JobStarted")
    add(
        "WORKERS_RECEIVE_JOBS",
        ok("workers.ready", "jobs.assigned_unacked") and started,
        why("workers.ready", "jobs.assigned_unacked")
        + f"; JobStarted events: {events.get('JobStarted', 0)}",
    )
    add(
        "LOGS_REACH_CLI",
        ok("canary.logs"),
        why("canary.logs") if "canary.logs" in by_id else "not verified: run with --canary",
    )
    done = canary_state == "SUCCEEDED" or jobs.get("SUCCEEDED", 0) + jobs.get("FAILED", 0) > 0
    add(
        "JOBS_COMPLETE",
        ok("jobs.running_stuck") and done,
        why("jobs.running_stuck") + f"; SUCCEEDED {jobs.get('SUCCEEDED', 0)}, "
        f"FAILED {jobs.get('FAILED', 0)}",
    )
    add("NO_GRPC_ERRORS", ok("logs.grpc_errors"), why("logs.grpc_errors"))
    add("THROUGHPUT_STABLE", ok("throughput.recent"), why("throughput.recent"))
    add(
        "OUTBOX_PUBLISHED",
        ok("outbox.backlog", "outbox.flow")
        and snap is not None
        and snap.outbox_total > snap.outbox_unpublished,
        why("outbox.backlog", "outbox.flow"),
    )
    return items
