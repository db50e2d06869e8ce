"""Checks of the jobs' way from the queue to a result: backlog, dispatcher progress,
unacknowledged and stuck attempts, queue/job consistency."""

from __future__ import annotations

from typing import Any

from hodei.diagnose.checks_sessions import blocked_sentence, lock_waits
from hodei.diagnose.checks_workers import capacity
from hodei.diagnose.failures import session_words
from hodei.diagnose.probes import ProbeFailed
from hodei.diagnose.readings import (
    ids,
    live_servers,
    long_transactions,
    offending_rows,
    probes,
)
from hodei.diagnose.registry import CheckContext, Outcome, check
from hodei.durations import human_age
from hodei.report.model import Status


@check(
    "queue.backlog",
    "Job queue",
    "Queued jobs do not pile up",
    "database",
    "WARN when jobs wait longer than queue_age_warn_s (or more than queue_depth_warn are "
    "queued) AND the queue grows: more jobs entered it than left it over the last "
    "queue_window_s. A queue that drains, however old, is a deployment at capacity",
)
def queue_backlog(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    q = probes(ctx).one("queue_flow", {"window_s": t.queue_window_s})
    depth, age = int(q.get("depth") or 0), q.get("oldest_age_s")
    arrived, departed = int(q.get("arrived") or 0), int(q.get("departed") or 0)
    ctx.facts["queue_depth"] = depth
    ctx.facts["queue_oldest_age_s"] = age
    window = human_age(t.queue_window_s)
    observed = (
        f"depth {depth}, oldest {human_age(age)}; in the last {window} {arrived} entered, "
        f"{departed} left"
    )
    threshold = (
        f"oldest <= {human_age(t.queue_age_warn_s)} and depth <= {t.queue_depth_warn}, "
        "unless the queue drains"
    )
    waiting_long = depth > t.queue_depth_warn or (age or 0.0) > t.queue_age_warn_s
    if not (waiting_long and arrived > departed):
        return Outcome(Status.PASS, observed, threshold)
    sample = probes(ctx).all("queue_sample", {"limit": 5})
    evidence = [
        f"job {r['job_id']} {r['state']} queued {human_age(r['age_s'])} ago" for r in sample
    ]
    return Outcome(
        Status.WARN,
        observed,
        threshold,
        evidence,
        "QUEUE_GROWING",
        {
            "depth": depth,
            "age": human_age(age),
            "arrived": arrived,
            "departed": departed,
            "window": window,
            "slots": capacity(ctx)["slots"],
            "server": ctx.server_address or "HOST:PORT",
        },
    )


@check(
    "dispatcher.progress",
    "Dispatcher",
    "The dispatcher processes the queue",
    "database",
    "FAIL when every live server has its dispatcher disabled (DISPATCHER_DISABLED), when "
    "a dispatcher statement waits on a lock longer than lock_wait_s (DISPATCHER_BLOCKED, "
    "naming the blocking pid), when its cycles fail (DISPATCHER_CRASHING, with the last "
    "error from server_status), or when jobs wait PENDING longer than pending_age_s while "
    "READY workers exist (DISPATCHER_STALLED / DISPATCHER_NOT_CLAIMING)",
)
def dispatcher_progress(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    servers = live_servers(ctx)
    ctx.facts["live_servers"] = servers
    stale = probes(ctx).all("pending_older_than", {"age_s": t.pending_age_s, "limit": 20})
    stale = [r for r in stale if r["queued"]]  # unqueued ones are consistency's finding
    ready = ctx.facts.get("ready_workers", 0)
    enabled = [s for s in servers if s["dispatcher_enabled"]]
    cycle_ages = [s["last_cycle_age_s"] for s in enabled if s["last_cycle_age_s"] is not None]
    cycle_age = min(cycle_ages) if cycle_ages else None
    ctx.facts["dispatcher_cycle_age_s"] = cycle_age
    evidence = [
        f"server {s['server_id']}: dispatcher_enabled={s['dispatcher_enabled']}, "
        f"cycles={s['dispatcher_cycles']}, last cycle "
        f"{human_age(s['last_cycle_age_s'])} ago"
        for s in servers
    ]
    evidence += [f"job {r['job_id']} PENDING for {human_age(r['age_s'])}" for r in stale[:5]]
    oldest = max((r["age_s"] for r in stale), default=None)
    threshold = f"no PENDING job older than {human_age(t.pending_age_s)} while workers are READY"
    params = {
        "pending": len(stale),
        "pending_age": human_age(oldest),
        "ready": ready,
        "cycle_age": human_age(cycle_age) if cycle_age is not None else "ever",
        "servers": len(servers),
    }
    blocked = _dispatcher_lock_waits(ctx)
    if blocked:
        # Its statement waits on a lock: not stopped, not stalled, blocked by someone.
        first = blocked[0]
        return Outcome(
            Status.FAIL,
            f"dispatcher blocked by pid {first['blocker_pid']} for {human_age(first['waiting_s'])}",
            f"no dispatcher statement waits > {human_age(t.lock_wait_s)} on a lock",
            [blocked_sentence(w) for w in blocked[:5]] + evidence,
            "DISPATCHER_BLOCKED",
            params
            | {
                "pid": first["blocker_pid"],
                "holder": session_words(first, "blocker_"),
                "table": first["relation"] or "?",
                "wait": human_age(first["waiting_s"]),
                "waiter": first["application_name"],
            },
        )
    crashing = [
        s
        for s in enabled
        if s.get("last_error_age_s") is not None
        and s["last_error_age_s"] <= t.server_stale_s
        and (s["last_cycle_age_s"] is None or s["last_error_age_s"] < s["last_cycle_age_s"])
    ]
    if crashing:
        # Its cycles fail (the server wrote the error); the supervisor keeps restarting it.
        first = crashing[0]
        evidence = [
            f"server {s['server_id']}: dispatch cycle failed {human_age(s['last_error_age_s'])} "
            f"ago: {s['dispatcher_last_error']}"
            for s in crashing
        ] + evidence
        return Outcome(
            Status.FAIL,
            f"dispatcher crashing on {len(crashing)} server(s): {first['dispatcher_last_error']}",
            "no failed dispatch cycle since the last good one",
            evidence,
            "DISPATCHER_CRASHING",
            params
            | {
                "server": first["server_id"],
                "error": first["dispatcher_last_error"],
                "error_age": human_age(first["last_error_age_s"]),
            },
        )
    if not servers:
        if stale and ready:
            params["cycle_age"] = "ever (no live server)"
            return Outcome(
                Status.FAIL,
                f"{len(stale)} stale PENDING, no live server",
                threshold,
                evidence,
                "DISPATCHER_STALLED",
                params,
            )
        return Outcome(Status.SKIP, "no live server recorded in server_status")
    if not enabled:
        # Nothing will ever dispatch: every PENDING job counts, not only the stale ones
        # (the sentence said "0 job(s) PENDING (oldest n/a)" while 3 were).
        waiting = probes(ctx).one("oldest_pending")
        params["pending"] = int(waiting.get("n") or 0)
        params["pending_age"] = human_age(waiting.get("oldest_age_s"))
        lead = "dispatcher not processing the queue: " if stale else ""
        return Outcome(
            Status.FAIL,
            f"{lead}dispatcher disabled on {len(servers)} live "
            f"server(s), {len(stale)} PENDING older than {human_age(t.pending_age_s)}",
            "dispatcher_enabled on >= 1 live server",
            evidence,
            "DISPATCHER_DISABLED",
            params,
        )
    observed = (
        f"last cycle {human_age(cycle_age)} ago, {len(stale)} PENDING older than "
        f"{human_age(t.pending_age_s)}, {ready} READY"
    )
    if stale and ready:
        # Cycling recently yet not claiming is another failure than not cycling at all.
        cycling = cycle_age is not None and cycle_age <= t.dispatcher_cycle_s
        if cycling:
            evidence += long_transactions(ctx)
        return Outcome(
            Status.FAIL,
            "dispatcher not processing the queue: " + observed,
            threshold,
            evidence,
            "DISPATCHER_NOT_CLAIMING" if cycling else "DISPATCHER_STALLED",
            params,
        )
    if ctx.facts.get("queue_depth", 0) and (cycle_age is None or cycle_age > t.dispatcher_cycle_s):
        return Outcome(
            Status.WARN,
            observed,
            f"a cycle every <= {human_age(t.dispatcher_cycle_s)}",
            evidence,
            "DISPATCHER_STALLED",
            params,
        )
    return Outcome(Status.PASS, observed, threshold, evidence)


def _dispatcher_lock_waits(ctx: CheckContext) -> list[dict[str, Any]]:
    """Dispatcher connections (application_name hodei-<server>-dispatcher) waiting on a
    lock longer than lock_wait_s; [] when pg_stat_activity cannot be read."""
    try:
        waits = lock_waits(ctx)
    except ProbeFailed:
        return []
    return [w for w in waits if str(w["application_name"] or "").endswith("-dispatcher")]


@check(
    "jobs.assigned_unacked",
    "Job execution",
    "Assigned jobs are acknowledged",
    "database",
    "ASSIGNED past ack_deadline (or assigned_at + ack_timeout_s) + ack_grace_s -> FAIL",
)
def jobs_assigned_unacked(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    rows = probes(ctx).all(
        "assigned_past_deadline", {"ack_s": t.ack_timeout_s, "grace_s": t.ack_grace_s, "limit": 20}
    )
    return offending_rows(
        rows,
        clear=f"0 ASSIGNED past deadline + {human_age(t.ack_grace_s)}",
        status=Status.FAIL,
        finding="JOB_ACK_OVERDUE",
        line=lambda r: (
            f"job {r['job_id']} on worker {r['worker_id']} overdue {human_age(r['overdue_s'])}"
        ),
        counted=" overdue",
    )


@check(
    "jobs.running_stuck",
    "Job execution",
    "RUNNING jobs are alive",
    "database",
    "RUNNING past timeout + running_grace_s, or on a LOST/TERMINATED/missing/silent worker -> FAIL",
)
def jobs_running_stuck(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    rows = probes(ctx).all(
        "running_stuck", {"grace_s": t.running_grace_s, "stale_s": t.heartbeat_stale_s, "limit": 20}
    )
    return offending_rows(
        rows,
        clear="0 stuck RUNNING jobs",
        status=Status.FAIL,
        finding="JOB_RUNNING_STUCK",
        line=lambda r: (
            f"job {r['job_id']} RUNNING {human_age(r['running_for_s'])} on worker "
            f"{r['worker_id']} ({r['worker_state'] or 'missing'}): {r['reason']}"
        ),
        counted=" stuck",
    )


@check(
    "consistency.pending_unqueued",
    "Consistency",
    "Every PENDING job is queued",
    "database",
    "a PENDING job without its job_queue row (older than consistency_grace_s) -> FAIL",
)
def consistency_pending_unqueued(ctx: CheckContext) -> Outcome:
    rows = probes(ctx).all(
        "pending_not_queued", {"grace_s": ctx.thresholds.consistency_grace_s, "limit": 20}
    )
    return offending_rows(
        rows,
        clear="0 PENDING jobs outside job_queue",
        status=Status.FAIL,
        finding="PENDING_NOT_QUEUED",
        line=lambda r: f"job {r['job_id']} PENDING for {human_age(r['age_s'])}, no job_queue row",
        counted=" PENDING job(s) not in job_queue",
        params={"ids": ids(rows, "job_id")},
    )


@check(
    "consistency.queue_not_pending",
    "Consistency",
    "Queue rows belong to PENDING jobs",
    "database",
    "a job_queue row whose job is no longer PENDING -> FAIL",
)
def consistency_queue_not_pending(ctx: CheckContext) -> Outcome:
    rows = probes(ctx).all(
        "queued_not_pending", {"grace_s": ctx.thresholds.consistency_grace_s, "limit": 20}
    )
    return offending_rows(
        rows,
        clear="0 queue rows for non-PENDING jobs",
        status=Status.FAIL,
        finding="QUEUE_ROW_FOR_FINISHED_JOB",
        line=lambda r: f"job {r['job_id']} is {r['state']} but queued",
    )
