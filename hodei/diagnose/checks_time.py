"""Checks that the recorded times can be true: no heartbeat ahead of the database
clock (servers' and workers'), no job whose transitions are out of order.

Every Hodei writer stamps rows with the database's now(); a time ahead of it means the
database clock stepped back, or a row was written by hand or by another clock. Either
way the checks that judge silence and durations from these rows are blind to them, so
they are named with the row ids and the gap."""

from __future__ import annotations

from hodei.diagnose.readings import clock_skew, ids, offending_rows, probes
from hodei.diagnose.registry import CheckContext, Outcome, check
from hodei.durations import human_age
from hodei.report.model import Status


@check(
    "time.heartbeats",
    "Consistency",
    "No heartbeat ahead of the database clock",
    "database",
    "workers.last_heartbeat or server_status.heartbeat_at later than the database's "
    "clock_timestamp() + clock_tolerance_s -> FAIL, naming each row and by how much",
)
def time_heartbeats(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    rows = probes(ctx).all("future_heartbeats", {"tolerance_s": t.clock_tolerance_s, "limit": 20})
    return offending_rows(
        rows,
        clear=f"0 heartbeats ahead of the database clock by > {human_age(t.clock_tolerance_s)}",
        status=Status.FAIL,
        finding="HEARTBEAT_IN_FUTURE",
        line=lambda r: (
            f"{r['kind']} {r['id']}: heartbeat {human_age(r['ahead_s'])} ahead of the "
            "database clock"
        ),
        counted=" heartbeat(s) in the future",
        params={
            "gap": human_age(max((r["ahead_s"] for r in rows), default=0.0)),
            "ids": ", ".join(f"{r['kind']} {str(r['id'])[:8]}" for r in rows[:3])
            + ("…" if len(rows) > 3 else ""),
        },
    )


@check(
    "time.server_clock",
    "gRPC server",
    "Server clocks agree with the database",
    "database",
    "WARN when a live server's host clock, written with its server_status heartbeat, "
    "differs from the database's by more than clock_skew_s (workers: workers.clock)",
)
def time_server_clock(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    rows = probes(ctx).all(
        "server_clock_skew",
        {"skew_s": t.clock_skew_s, "stale_s": t.server_stale_s, "limit": 20},
    )
    return clock_skew(
        rows,
        limit_s=t.clock_skew_s,
        finding="SERVER_CLOCK_SKEW",
        counted=" server(s) with a skewed clock",
        who=lambda r: f"server {r['id']} ({r['listen_address'] or 'address unknown'})",
    )


@check(
    "time.job_order",
    "Consistency",
    "Job timestamps in a possible order",
    "database",
    "jobs created within timestamp_window_s with created_at in the future, assigned_at "
    "or started_at before created_at, or finished_at before started_at (by more than "
    "clock_tolerance_s) -> FAIL, naming each job and the gap",
)
def time_job_order(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    rows = probes(ctx).all(
        "impossible_job_timestamps",
        {"window_s": t.timestamp_window_s, "tolerance_s": t.clock_tolerance_s, "limit": 20},
    )
    jobs = list(dict.fromkeys(r["job_id"] for r in rows))
    return offending_rows(
        rows,
        clear=f"0 jobs with timestamps out of order by > {human_age(t.clock_tolerance_s)}",
        status=Status.FAIL,
        finding="JOB_TIMESTAMPS_IMPOSSIBLE",
        line=lambda r: (
            f"job {r['job_id']} ({r['state']}): {r['problem']} by {human_age(r['gap_s'])}"
        ),
        counted=" impossible timestamp(s)",
        params={
            "count": len(jobs),
            "sample": "; ".join(
                f"job {str(r['job_id'])[:8]}: {r['problem']} by {human_age(r['gap_s'])}"
                for r in rows[:2]
            )
            + ("…" if len(rows) > 2 else ""),
            "ids_sql": ", ".join(f"'{j}'" for j in jobs[:5]),
            "ids": ids(rows, "job_id"),
        },
    )
