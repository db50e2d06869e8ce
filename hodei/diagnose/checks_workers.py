"""Checks of the workers as the database records them: READY with an open stream,
heartbeats, slots held without a job."""

from __future__ import annotations

from hodei.diagnose.readings import (
    ids,
    offending_rows,
    probes,
)
from hodei.diagnose.registry import CheckContext, Outcome, check
from hodei.durations import human_age
from hodei.report.model import Status


@check(
    "workers.ready",
    "Workers",
    "READY workers available",
    "database",
    "READY workers with an open stream and a heartbeat fresher than heartbeat_stale_s; "
    "FAIL when none",
)
def workers_ready(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    ready = int(probes(ctx).one("ready_workers", {"age_s": t.heartbeat_stale_s}).get("n") or 0)
    ctx.facts["ready_workers"] = ready
    by_state = ctx.snapshot.workers_by_state if ctx.snapshot else {}
    observed = f"{ready} READY ({', '.join(f'{k} {v}' for k, v in by_state.items()) or 'none'})"
    status = Status.PASS if ready > 0 else Status.FAIL
    return Outcome(
        status,
        observed,
        ">= 1 READY",
        finding="NO_READY_WORKERS",
        params={"server": ctx.server_address or "HOST:PORT"},
    )


@check(
    "workers.heartbeat",
    "Workers",
    "Worker heartbeats are fresh",
    "database",
    "READY/BUSY workers silent longer than heartbeat_stale_s -> FAIL; workers LOST within "
    "lost_window_s -> WARN (FAIL when no READY worker is left)",
)
def workers_heartbeat(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    stale = probes(ctx).all("stale_live_workers", {"age_s": t.heartbeat_stale_s, "limit": 20})
    lost = probes(ctx).all("recently_lost_workers", {"window_s": t.lost_window_s, "limit": 20})
    threshold = f"heartbeat <= {human_age(t.heartbeat_stale_s)}"
    evidence = [
        f"{r['state']} worker {r['id']} pid {r['pid']}: last heartbeat "
        f"{human_age(r['heartbeat_age_s'])} ago"
        for r in stale
    ]
    evidence += [
        f"LOST worker {r['id']} pid {r['pid']}: last heartbeat "
        f"{human_age(r['heartbeat_age_s'])} ago"
        for r in lost
    ]
    rows = stale + lost
    if not rows:
        return Outcome(Status.PASS, "all live workers heard from", threshold)
    oldest = max((r["heartbeat_age_s"] or 0.0) for r in rows)
    params = {"count": len(rows), "age": human_age(oldest), "ids": ids(rows)}
    ready = ctx.facts.get("ready_workers", 0)
    status = Status.FAIL if stale or ready == 0 else Status.WARN
    observed = f"{len(stale)} silent but still READY/BUSY, {len(lost)} LOST recently"
    return Outcome(status, observed, threshold, evidence, "WORKER_HEARTBEAT_STALE", params)


@check(
    "workers.busy_without_job",
    "Workers",
    "No BUSY worker without a job",
    "database",
    "BUSY for longer than heartbeat_stale_s with no ASSIGNED/RUNNING job -> WARN",
)
def workers_busy_without_job(ctx: CheckContext) -> Outcome:
    rows = probes(ctx).all(
        "busy_without_job", {"age_s": ctx.thresholds.heartbeat_stale_s, "limit": 20}
    )
    return offending_rows(
        rows,
        clear="0 BUSY workers without a job",
        status=Status.WARN,
        finding="WORKER_BUSY_WITHOUT_JOB",
        line=lambda r: (
            f"worker {r['id']} BUSY for {human_age(r['busy_for_s'])}, "
            f"running_jobs={r['running_jobs']}"
        ),
    )
