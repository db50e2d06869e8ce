"""Checks of what the platform itself reports (issue 14): workers that own jobs with no
live stream, worker clocks off from the database's, attempts whose output the worker
read but the server did not store, and repairs the platform made.

Each reads what the server records for it (migration 0009: workers.stream_closed_at,
workers.clock_skew_s, jobs.output_lines_read; `Repaired` domain events), so each is
named from the database alone, without a canary job."""

from __future__ import annotations

from typing import Any

from hodei.diagnose.readings import clock_skew, ids, offending_rows, probes
from hodei.diagnose.registry import CheckContext, Outcome, check
from hodei.durations import human_age
from hodei.report.model import Status

_LIMIT = 20


def _jobs(row: dict[str, Any]) -> list[str]:
    return [str(j) for j in row.get("jobs") or []]


def _stream_line(row: dict[str, Any]) -> str:
    jobs = _jobs(row)
    if row["why"] == "closed":
        how = f"stream closed {human_age(row['closed_for_s'])} ago"
    else:
        how = f"stream held by {row['server_id']} ({row['why']})"
    return (
        f"worker {row['id']} ({row['name'] or 'unnamed'}, pid {row['pid']}, {row['state']}): "
        f"{how}, last heartbeat {human_age(row['heartbeat_age_s'])} ago; owns "
        f"{len(jobs)} job(s): {', '.join(jobs)}"
    )


@check(
    "workers.stream",
    "Workers",
    "Workers that own jobs have a live stream",
    "database",
    "FAIL when a worker owns ASSIGNED/RUNNING jobs but no live server holds its stream: "
    "closed for longer than stream_closed_grace_s, or held by a server whose "
    "server_status is stopped or older than server_stale_s (named before the "
    "heartbeat deadline)",
)
def workers_stream(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    rows = probes(ctx).all(
        "workers_without_stream",
        {"grace_s": t.stream_closed_grace_s, "server_stale_s": t.server_stale_s, "limit": _LIMIT},
    )
    jobs = [j.split(" ")[0] for r in rows for j in _jobs(r)]
    return offending_rows(
        rows,
        clear="0 workers owning jobs without a live stream",
        status=Status.FAIL,
        finding="WORKER_STREAM_CLOSED",
        line=_stream_line,
        counted=f" worker(s) own {len(jobs)} job(s) with no live stream",
        params={
            "ids": ids(rows),
            "jobs": len(jobs),
            "job_ids": ", ".join(j[:8] for j in jobs[:3]) + ("…" if len(jobs) > 3 else ""),
        },
    )


@check(
    "workers.clock",
    "Workers",
    "Worker clocks agree with the database",
    "database",
    "WARN when a live worker's clock, sent with its Hello and heartbeats, differs from "
    "the database's by more than clock_skew_s",
)
def workers_clock(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    rows = probes(ctx).all("worker_clock_skew", {"skew_s": t.clock_skew_s, "limit": _LIMIT})
    outcome = clock_skew(
        rows,
        limit_s=t.clock_skew_s,
        finding="WORKER_CLOCK_SKEW",
        counted=" worker(s) with a skewed clock",
        who=lambda r: f"worker {r['id']} ({r['name'] or 'unnamed'}, pid {r['pid']})",
    )
    if rows:
        outcome.threshold = f"|skew| <= {human_age(t.clock_skew_s)}"
    return outcome


@check(
    "attempts.output",
    "Log streaming",
    "Every line a worker read reached the server",
    "database",
    "FAIL when an attempt finished within output_window_s with a different number of "
    "output lines read by its worker (reported with the result) than stored by the "
    "server; running jobs are not judged",
)
def attempts_output(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    rows = probes(ctx).all("attempts_output_lost", {"window_s": t.output_window_s, "limit": _LIMIT})
    if not rows:
        summary = probes(ctx).one("attempts_output_summary", {"window_s": t.output_window_s})
        measured = int(summary.get("measured") or 0)
        return Outcome(
            Status.PASS,
            f"{measured} finished attempt(s) measured, all output stored",
            "lines read = lines stored",
        )
    first = rows[0]
    return Outcome(
        Status.FAIL,
        f"{len(rows)} attempt(s) lost output",
        "lines read = lines stored",
        [
            f"worker {r['worker_name'] or r['worker_id']} ({r['worker_id']}) read "
            f"{r['lines_read']} line(s) ({r['bytes_read']} bytes) for job {r['job_id']} "
            f"(attempt {r['attempts']}, {r['state']}); {r['lines_stored']} reached the server"
            for r in rows
        ],
        "LOGS_LOST",
        {
            "count": len(rows),
            "worker": first["worker_name"] or first["worker_id"],
            "worker_id": first["worker_id"],
            "read": first["lines_read"],
            "stored": first["lines_stored"],
            "job": first["job_id"],
        },
    )


@check(
    "queue.repairs",
    "Consistency",
    "No repairs were needed",
    "database",
    "WARN when the platform repaired something within repair_window_s (Repaired events: "
    "stray queue rows of jobs that were not PENDING), with the job ids",
)
def queue_repairs(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    rows = probes(ctx).all("recent_repairs", {"window_s": t.repair_window_s, "limit": _LIMIT})
    window = human_age(t.repair_window_s)
    if not rows:
        return Outcome(Status.PASS, f"0 repairs in the last {window}", "0")
    total = int(rows[0]["total"])
    stray = [r for r in rows if r["repair"] == "stray_queue_row"]
    return Outcome(
        Status.WARN,
        f"repaired {total} stray queue row(s) in the last {window}",
        "0",
        [
            f"{r['repair']}: job {r['job_id']} was {r['state']}, row removed by "
            f"{r['actor']} {human_age(r['age_s'])} ago"
            for r in rows
        ],
        "QUEUE_ROWS_REPAIRED",
        {
            "count": total,
            "window": window,
            "ids": ids(stray or rows, key="job_id"),
        },
    )
