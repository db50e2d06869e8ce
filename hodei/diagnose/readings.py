"""What several database checks read, and how they judge rows: the probe session of a
check, the live servers and the long transactions (the dispatcher's and the outbox's
checks both blame a stuck transaction), recent activity, and the verdict of a probe
that lists only what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hodei.diagnose.probes import ProbeSession
from hodei.diagnose.registry import CheckContext, Outcome
from hodei.durations import human_age
from hodei.report.model import Status


def probes(ctx: CheckContext) -> ProbeSession:
    assert ctx.session is not None  # the runner skips database checks without a session
    return ctx.session


def ids(rows: list[dict[str, Any]], key: str = "id", n: int = 3) -> str:
    shown = [str(r.get(key, ""))[:8] for r in rows[:n]]
    return ", ".join(shown) + ("…" if len(rows) > n else "")


def offending_rows(
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


def live_servers(ctx: CheckContext) -> list[dict[str, Any]]:
    rows = probes(ctx).all("server_status", {"limit": 50})
    return [
        r
        for r in rows
        if r["stopped_at"] is None
        and (r["heartbeat_age_s"] or 0.0) <= ctx.thresholds.server_stale_s
    ]


def long_transactions(ctx: CheckContext) -> list[str]:
    rows = probes(ctx).all("long_transactions", {"age_s": ctx.thresholds.pending_age_s, "limit": 5})
    return [
        f"transaction open {human_age(r['xact_age_s'])} in pid {r['pid']} "
        f"({r['application_name'] or r['usename']}, {r['state']}): {r['query']}"
        for r in rows
    ]


def activity(ctx: CheckContext) -> dict[str, Any]:
    if "activity" not in ctx.facts:
        t = ctx.thresholds
        ctx.facts["activity"] = probes(ctx).one(
            "activity_window", {"window_s": t.activity_window_s, "grace_s": 1.0}
        )
    return dict(ctx.facts["activity"])


def clock_skew(
    rows: list[dict[str, Any]],
    *,
    limit_s: float,
    finding: str,
    counted: str,
    who: Callable[[dict[str, Any]], str],
) -> Outcome:
    """The verdict of a clock check (workers', servers'): rows carry `clock_skew_s`
    (their clock - the database's) and `measured_age_s`; WARN above `limit_s`."""
    worst = max((abs(r["clock_skew_s"]) for r in rows), default=0.0)
    return offending_rows(
        rows,
        clear=f"|skew| <= {human_age(limit_s)}",
        status=Status.WARN,
        finding=finding,
        line=lambda r: (
            f"{who(r)}: clock {abs(r['clock_skew_s']):.1f} s "
            f"{'ahead of' if r['clock_skew_s'] > 0 else 'behind'} the database "
            f"(measured {human_age(r['measured_age_s'])} ago)"
        ),
        counted=counted,
        params={"ids": ids(rows), "skew": f"{worst:.1f} s", "limit": human_age(limit_s)},
    )
