"""Checks that read the database (read-only probes from hodei/diagnose/probes.sql)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hodei.diagnose.probes import ProbeSession
from hodei.diagnose.registry import CheckContext, Outcome, check
from hodei.durations import human_age
from hodei.redaction import redact
from hodei.report.model import Status


def _probes(ctx: CheckContext) -> ProbeSession:
    assert ctx.session is not None  # the runner skips database checks without a session
    return ctx.session


def _ids(rows: list[dict[str, Any]], key: str = "id", n: int = 3) -> str:
    shown = [str(r.get(key, ""))[:8] for r in rows[:n]]
    return ", ".join(shown) + ("…" if len(rows) > n else "")


def _offending_rows(
    rows: list[dict[str, Any]],
    *,
    clear: str,
    status: Status,
    finding: str,
    line: Callable[[dict[str, Any]], str],
    counted: str = "",
    params: dict[str, Any] | None = None,
) -> Outcome:
    """The verdict of a check whose probe lists only what is wrong: PASS (threshold
    `clear`) when it lists nothing, else `status` with one evidence line per row.

    `counted` follows the row count in `observed`; the finding's params always carry
    the count, plus `params`.
    """
    if not rows:
        return Outcome(Status.PASS, "0", clear)
    return Outcome(
        status,
        f"{len(rows)}{counted}",
        "0",
        [line(r) for r in rows],
        finding,
        {"count": len(rows), **(params or {})},
    )


@check(
    "database.connect",
    "PostgreSQL",
    "Database reachable and fast",
    "",
    "connects read-only and times a query round trip; WARN > db_latency_warn_s, FAIL > "
    "db_latency_fail_s; unreachable -> exit 3",
)
def database_connect(ctx: CheckContext) -> Outcome:
    if not ctx.database_url:
        return Outcome(Status.SKIP, observed="no --database-url")
    if ctx.session is None:
        return Outcome(
            Status.FAIL,
            observed=ctx.db_error,
            finding="DATABASE_UNREACHABLE",
            params={"database": redact(ctx.database_url), "error": ctx.db_error},
        )
    t = ctx.thresholds
    # The query round trip is the latency; connecting (TCP, auth, fork of a backend)
    # is shown but not judged, as a loaded host makes it noisy.
    latency = ctx.session.timed_ping()
    ctx.facts["db_latency_s"] = latency
    observed = f"query {human_age(latency)} (connect {human_age(ctx.session.connect_s)})"
    threshold = f"warn > {human_age(t.db_latency_warn_s)}, fail > {human_age(t.db_latency_fail_s)}"
    status = Status.PASS
    if latency > t.db_latency_fail_s:
        status = Status.FAIL
    elif latency > t.db_latency_warn_s:
        status = Status.WARN
    return Outcome(
        status,
        observed,
        threshold,
        [f"database {redact(ctx.database_url)}"],
        finding="DATABASE_UNREACHABLE",
        params={"database": redact(ctx.database_url), "error": f"slow: {human_age(latency)}"},
    )


@check(
    "database.schema",
    "PostgreSQL",
    "Schema at the expected version",
    "database",
    "schema_migrations max(version) equals the latest migration shipped (expected_schema)",
)
def database_schema(ctx: CheckContext) -> Outcome:
    from hodei.db.migrate import latest_version

    expected = ctx.thresholds.expected_schema or latest_version()
    observed = _probes(ctx).one("schema_version").get("version")
    status = Status.PASS if observed == expected else Status.FAIL
    return Outcome(
        status,
        f"version {observed}",
        f"= {expected}",
        finding="SCHEMA_MISMATCH",
        params={"observed": observed, "expected": expected},
    )


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
    ready = int(_probes(ctx).one("ready_workers", {"age_s": t.heartbeat_stale_s}).get("n") or 0)
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
    stale = _probes(ctx).all("stale_live_workers", {"age_s": t.heartbeat_stale_s, "limit": 20})
    lost = _probes(ctx).all("recently_lost_workers", {"window_s": t.lost_window_s, "limit": 20})
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
    params = {"count": len(rows), "age": human_age(oldest), "ids": _ids(rows)}
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
    rows = _probes(ctx).all(
        "busy_without_job", {"age_s": ctx.thresholds.heartbeat_stale_s, "limit": 20}
    )
    return _offending_rows(
        rows,
        clear="0 BUSY workers without a job",
        status=Status.WARN,
        finding="WORKER_BUSY_WITHOUT_JOB",
        line=lambda r: (
            f"worker {r['id']} BUSY for {human_age(r['busy_for_s'])}, "
            f"running_jobs={r['running_jobs']}"
        ),
    )


@check(
    "queue.backlog",
    "Job queue",
    "Queue depth and age",
    "database",
    "WARN when depth > queue_depth_warn or the oldest entry is older than queue_age_warn_s",
)
def queue_backlog(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    q = _probes(ctx).one("queue_summary")
    depth, age = int(q.get("depth") or 0), q.get("oldest_age_s")
    ctx.facts["queue_depth"] = depth
    observed = f"depth {depth}, oldest {human_age(age)}"
    threshold = f"depth <= {t.queue_depth_warn}, oldest <= {human_age(t.queue_age_warn_s)}"
    if depth > t.queue_depth_warn or (age or 0.0) > t.queue_age_warn_s:
        sample = _probes(ctx).all("queue_sample", {"limit": 5})
        evidence = [
            f"job {r['job_id']} {r['state']} queued {human_age(r['age_s'])} ago" for r in sample
        ]
        return Outcome(
            Status.WARN,
            observed,
            threshold,
            evidence,
            "LOW_THROUGHPUT",
            {"rate": "?", "pending": depth},
        )
    return Outcome(Status.PASS, observed, threshold)


def _live_servers(ctx: CheckContext) -> list[dict[str, Any]]:
    rows = _probes(ctx).all("server_status", {"limit": 50})
    return [
        r
        for r in rows
        if r["stopped_at"] is None
        and (r["heartbeat_age_s"] or 0.0) <= ctx.thresholds.server_stale_s
    ]


def _long_transactions(ctx: CheckContext) -> list[str]:
    rows = _probes(ctx).all(
        "long_transactions", {"age_s": ctx.thresholds.pending_age_s, "limit": 5}
    )
    return [
        f"transaction open {human_age(r['xact_age_s'])} in pid {r['pid']} "
        f"({r['application_name'] or r['usename']}, {r['state']}): {r['query']}"
        for r in rows
    ]


@check(
    "dispatcher.progress",
    "Dispatcher",
    "The dispatcher processes the queue",
    "database",
    "FAIL when jobs wait PENDING longer than pending_age_s while READY workers exist "
    "('dispatcher not processing the queue'), or when every live server has its "
    "dispatcher disabled; reports server_status.dispatcher_last_cycle_at",
)
def dispatcher_progress(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    servers = _live_servers(ctx)
    ctx.facts["live_servers"] = servers
    stale = _probes(ctx).all("pending_older_than", {"age_s": t.pending_age_s, "limit": 20})
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
            evidence += _long_transactions(ctx)
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


@check(
    "jobs.assigned_unacked",
    "Job execution",
    "Assigned jobs are acknowledged",
    "database",
    "ASSIGNED past ack_deadline (or assigned_at + ack_timeout_s) + ack_grace_s -> FAIL",
)
def jobs_assigned_unacked(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    rows = _probes(ctx).all(
        "assigned_past_deadline", {"ack_s": t.ack_timeout_s, "grace_s": t.ack_grace_s, "limit": 20}
    )
    return _offending_rows(
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
    rows = _probes(ctx).all(
        "running_stuck", {"grace_s": t.running_grace_s, "stale_s": t.heartbeat_stale_s, "limit": 20}
    )
    return _offending_rows(
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
    rows = _probes(ctx).all(
        "pending_not_queued", {"grace_s": ctx.thresholds.consistency_grace_s, "limit": 20}
    )
    return _offending_rows(
        rows,
        clear="0 PENDING jobs outside job_queue",
        status=Status.FAIL,
        finding="PENDING_NOT_QUEUED",
        line=lambda r: f"job {r['job_id']} PENDING for {human_age(r['age_s'])}, no job_queue row",
        counted=" PENDING job(s) not in job_queue",
        params={"ids": _ids(rows, "job_id")},
    )


@check(
    "consistency.queue_not_pending",
    "Consistency",
    "Queue rows belong to PENDING jobs",
    "database",
    "a job_queue row whose job is no longer PENDING -> FAIL",
)
def consistency_queue_not_pending(ctx: CheckContext) -> Outcome:
    rows = _probes(ctx).all(
        "queued_not_pending", {"grace_s": ctx.thresholds.consistency_grace_s, "limit": 20}
    )
    return _offending_rows(
        rows,
        clear="0 queue rows for non-PENDING jobs",
        status=Status.FAIL,
        finding="QUEUE_ROW_FOR_FINISHED_JOB",
        line=lambda r: f"job {r['job_id']} is {r['state']} but queued",
    )


def _activity(ctx: CheckContext) -> dict[str, Any]:
    if "activity" not in ctx.facts:
        t = ctx.thresholds
        ctx.facts["activity"] = _probes(ctx).one(
            "activity_window", {"window_s": t.activity_window_s, "grace_s": 1.0}
        )
    return dict(ctx.facts["activity"])


@check(
    "events.flow",
    "Domain events",
    "Job activity writes domain events",
    "database",
    "jobs changed within activity_window_s but no job domain event -> FAIL",
)
def events_flow(ctx: CheckContext) -> Outcome:
    a = _activity(ctx)
    window = human_age(ctx.thresholds.activity_window_s)
    observed = (
        f"{a['job_events']} job event(s) for {a['jobs_touched']} job(s) changed in "
        f"{window}; last event {human_age(a['last_event_age_s'])} ago"
    )
    params = {"jobs_touched": a["jobs_touched"], "events": a["job_events"], "window": window}
    if a["jobs_touched"] and not a["job_events"]:
        return Outcome(
            Status.FAIL, observed, ">= 1 event per job change", [], "EVENTS_MISSING", params
        )
    return Outcome(Status.PASS, observed, ">= 1 event per job change")


@check(
    "outbox.flow",
    "Outbox",
    "Every domain event has its outbox row",
    "database",
    "domain events within activity_window_s without an outbox row (the transactional "
    "outbox bypassed, the seed's finding) -> FAIL",
)
def outbox_flow(ctx: CheckContext) -> Outcome:
    a = _activity(ctx)
    window = human_age(ctx.thresholds.activity_window_s)
    missing = int(a["events_without_outbox"] or 0)
    observed = (
        f"{a['events']} event(s), {a['outbox_rows']} outbox row(s) in {window}; "
        f"{missing} event(s) without outbox row"
    )
    if missing:
        return Outcome(
            Status.FAIL,
            observed,
            "0 events without outbox row",
            [],
            "OUTBOX_EMPTY",
            {"events": a["events"], "outbox": a["outbox_rows"], "window": window},
        )
    return Outcome(Status.PASS, observed, "0 events without outbox row")


@check(
    "outbox.backlog",
    "Outbox",
    "The outbox is being published",
    "database",
    "oldest unpublished outbox row older than outbox_age_warn_s -> WARN, "
    "older than outbox_age_fail_s -> FAIL; relay disabled on every live server -> FAIL "
    "with a backlog, WARN without",
)
def outbox_backlog(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    o = _probes(ctx).one("outbox_summary")
    age = o.get("oldest_unpublished_age_s")
    count = int(o.get("unpublished") or 0)
    observed = (
        f"{count} unpublished of {o.get('total')}, oldest {human_age(age)}; last "
        f"published {o.get('last_published_at') or 'never'}"
    )
    threshold = (
        f"oldest unpublished <= {human_age(t.outbox_age_warn_s)} (fail > "
        f"{human_age(t.outbox_age_fail_s)})"
    )
    params = {"count": count, "age": human_age(age)}
    servers = ctx.facts.get("live_servers")
    if servers is None:
        servers = _live_servers(ctx)
    evidence = [
        f"server {s['server_id']}: outbox_relay_enabled={s['outbox_relay_enabled']}, "
        f"last publish {human_age(s['last_publish_age_s'])} ago"
        for s in servers
    ]
    if servers and not any(s["outbox_relay_enabled"] for s in servers):
        # Nothing will ever publish: a backlog of any age is a failure.
        status = Status.FAIL if count else Status.WARN
        return Outcome(
            status,
            f"outbox relay disabled on every live server; {observed}",
            threshold,
            evidence,
            "OUTBOX_BACKLOG",
            params,
        )
    if age is not None and age > t.outbox_age_warn_s:
        evidence += _long_transactions(ctx)
        status = Status.FAIL if age > t.outbox_age_fail_s else Status.WARN
        return Outcome(status, observed, threshold, evidence, "OUTBOX_BACKLOG", params)
    return Outcome(Status.PASS, observed, threshold)


@check(
    "throughput.recent",
    "Throughput",
    "Jobs finish at a steady rate",
    "database",
    "jobs finished per minute over the last throughput_minutes; WARN when below "
    "throughput_min_per_min while jobs wait in the queue",
)
def throughput_recent(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    rows = _probes(ctx).all("finished_per_minute", {"minutes": max(1, int(t.throughput_minutes))})
    per_min = [int(r["finished"]) for r in rows]
    rate = sum(per_min) / max(1, len(per_min))
    ctx.facts["throughput_per_min"] = per_min
    observed = f"{rate:.1f} jobs/min (per minute, oldest first: {per_min})"
    waiting = ctx.facts.get("queue_depth", 0)
    threshold = f">= {t.throughput_min_per_min:g} jobs/min while jobs wait"
    if waiting and rate < t.throughput_min_per_min:
        return Outcome(
            Status.WARN,
            observed,
            threshold,
            [],
            "LOW_THROUGHPUT",
            {"rate": f"{rate:.1f}", "pending": waiting},
        )
    return Outcome(Status.PASS, observed, threshold)
