"""Checks of what the platform records and publishes: domain events, the outbox and its
relay, recent throughput."""

from __future__ import annotations

import contextlib

from hodei.diagnose.probes import ProbeFailed
from hodei.diagnose.readings import (
    activity,
    live_servers,
    long_transactions,
    probes,
)
from hodei.diagnose.registry import CheckContext, Outcome, check
from hodei.durations import human_age
from hodei.report.model import JobTimes, Status

#: The most finished jobs the report's latency chart is drawn from.
CHART_JOBS = 10_000


@check(
    "events.flow",
    "Domain events",
    "Job activity writes domain events",
    "database",
    "jobs changed within activity_window_s but no job domain event -> FAIL",
)
def events_flow(ctx: CheckContext) -> Outcome:
    a = activity(ctx)
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
    a = activity(ctx)
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
    o = probes(ctx).one("outbox_summary")
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
        servers = live_servers(ctx)
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
        evidence += long_transactions(ctx)
        status = Status.FAIL if age > t.outbox_age_fail_s else Status.WARN
        return Outcome(status, observed, threshold, evidence, "OUTBOX_BACKLOG", params)
    return Outcome(Status.PASS, observed, threshold)


@check(
    "throughput.recent",
    "Throughput",
    "Jobs finish at a steady rate",
    "database",
    "jobs finished per minute over the last throughput_minutes; WARN when below "
    "throughput_min_per_min while queued jobs wait longer than queue_age_warn_s",
)
def throughput_recent(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    rows = probes(ctx).all("finished_per_minute", {"minutes": max(1, int(t.throughput_minutes))})
    per_min = [int(r["finished"]) for r in rows]
    rate = sum(per_min) / max(1, len(per_min))
    ctx.facts["throughput_per_min"] = per_min
    ctx.facts["recent_job_times"] = recent_job_times(ctx, int(t.throughput_minutes))
    observed = f"{rate:.1f} jobs/min (per minute, oldest first: {per_min})"
    # Jobs queued for a moment say nothing of the rate (a burst just arrived): only a
    # wait longer than queue_age_warn_s makes a slow rate a finding.
    oldest = ctx.facts.get("queue_oldest_age_s") or 0.0
    waiting = ctx.facts.get("queue_depth", 0) if oldest > t.queue_age_warn_s else 0
    threshold = (
        f">= {t.throughput_min_per_min:g} jobs/min while jobs wait > "
        f"{human_age(t.queue_age_warn_s)}"
    )
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


def recent_job_times(ctx: CheckContext, minutes: int) -> list[JobTimes]:
    """The jobs that finished in the last `minutes` (the report's latency chart); none
    when the read fails: the chart is an extra, the check stands without it."""
    with contextlib.suppress(ProbeFailed):
        rows = probes(ctx).all(
            "recent_job_times", {"minutes": max(1, minutes), "limit": CHART_JOBS}
        )
        return [JobTimes.model_validate(row) for row in rows]
    return []
