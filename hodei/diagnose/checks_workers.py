"""Checks of the workers as the database records them: READY with an open stream,
heartbeats, slots held without a job."""

from __future__ import annotations

from typing import Any

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
    "Workers available (READY, or BUSY at capacity)",
    "database",
    "live workers (READY or BUSY, an open stream, a heartbeat fresher than "
    "heartbeat_stale_s); none READY but some BUSY is a deployment at capacity (PASS; "
    "queue.backlog judges the wait); FAIL when no live worker is left",
)
def workers_ready(ctx: CheckContext) -> Outcome:
    cap = capacity(ctx)
    by_state = cap["by_state"]
    breakdown = ", ".join(f"{k} {v}" for k, v in sorted(by_state.items())) or "no worker rows"
    threshold = ">= 1 live worker (READY, or BUSY with every slot taken)"
    if cap["ready"]:
        observed = (
            f"{cap['ready']} READY, {cap['busy']} BUSY: {cap['free_slots']} of "
            f"{cap['slots']} slot(s) free (rows: {breakdown})"
        )
        return Outcome(Status.PASS, observed, threshold)
    if cap["busy"]:
        # Every slot taken is a deployment working at capacity, not one that cannot
        # assign: the queued jobs go to the next slot that frees.
        observed = (
            f"at capacity: 0 READY, {cap['busy']} BUSY, all {cap['slots']} slot(s) busy "
            f"(rows: {breakdown})"
        )
        return Outcome(Status.PASS, observed, threshold)
    return Outcome(
        Status.FAIL,
        f"0 READY, 0 BUSY with a fresh heartbeat and an open stream (rows: {breakdown})",
        threshold,
        finding="NO_READY_WORKERS",
        params={"server": ctx.server_address or "HOST:PORT"},
    )


def capacity(ctx: CheckContext) -> dict[str, Any]:
    """The live workers and their slots, read once per run (the canary reuses it)."""
    if "capacity" not in ctx.facts:
        row = probes(ctx).one("worker_capacity", {"age_s": ctx.thresholds.heartbeat_stale_s})
        cap: dict[str, Any] = {
            k: int(row.get(k) or 0) for k in ("ready", "busy", "slots", "running", "free_slots")
        }
        cap["by_state"] = dict(row.get("by_state") or {})
        ctx.facts["capacity"] = cap
        # Read by the dispatcher's check: jobs can be assigned only to a READY worker.
        ctx.facts["ready_workers"] = cap["ready"]
    return dict(ctx.facts["capacity"])


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
    # A lost worker that a supervisor already replaced, holding no job, is history, not
    # a problem: shown, not counted (it used to warn for the whole lost window).
    replaced = [r for r in lost if r.get("replaced_by") and not r.get("jobs_held")]
    lost = [r for r in lost if r not in replaced]
    evidence = [f"{r['state']} worker {r['id']} pid {r['pid']}: {_silence(r)}" for r in stale]
    evidence += [f"LOST worker {r['id']} pid {r['pid']}: {_silence(r)}" for r in lost]
    history = [
        f"LOST worker {r['id']} pid {r['pid']} ({r['name']}): replaced by live worker "
        f"{r['replaced_by']} of the same name; it holds no job"
        for r in replaced
    ]
    rows = stale + lost
    if not rows:
        return Outcome(Status.PASS, "all live workers heard from", threshold, history)
    oldest = max((r["heartbeat_age_s"] or 0.0) for r in rows)
    params = {"count": len(rows), "age": human_age(oldest), "ids": ids(rows)}
    # Lost workers are a failure only when no live worker is left to run the jobs.
    cap = capacity(ctx)
    status = Status.FAIL if stale or cap["ready"] + cap["busy"] == 0 else Status.WARN
    observed = f"{len(stale)} silent but still READY/BUSY, {len(lost)} LOST recently"
    orphans = [r for r in rows if r.get("stopped_server")]
    if len(orphans) == len(rows):
        # Every silent worker lost its stream when a server stopped, and none came back:
        # the server is what is gone; the workers are likely alive and retrying it.
        first = orphans[0]
        status = Status.FAIL if cap["ready"] + cap["busy"] == 0 else Status.WARN
        return Outcome(
            status,
            observed,
            threshold,
            evidence + history,
            "WORKER_SERVER_STOPPED",
            params
            | {
                "server": first["stopped_server"],
                "address": first["stopped_address"] or "an unknown address",
                "stopped_age": human_age(first["stopped_age_s"]),
            },
        )
    return Outcome(
        status, observed, threshold, evidence + history, "WORKER_HEARTBEAT_STALE", params
    )


def _silence(row: dict[str, Any]) -> str:
    words = f"last heartbeat {human_age(row['heartbeat_age_s'])} ago"
    if row.get("stopped_server"):
        words += (
            f"; its stream closed when server {row['stopped_server']} "
            f"({row['stopped_address'] or 'address unknown'}) stopped "
            f"{human_age(row['stopped_age_s'])} ago, and it has not reconnected"
        )
    return words


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
