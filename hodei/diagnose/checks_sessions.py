"""Checks of what the database sessions do: the snapshot every figure of the run comes
from, and sessions that block Hodei (lock waits, with who blocks them, and long or idle
transactions on Hodei tables). Every Hodei connection says who it is in
application_name (`hodei-<server id>-<role>`, hodei.db.connector), so a blocked
dispatcher or a lingering psql session is named, not guessed."""

from __future__ import annotations

from typing import Any

from hodei.diagnose.failures import outcome_for, session_words
from hodei.diagnose.probes import SnapshotParts
from hodei.diagnose.readings import probes
from hodei.diagnose.registry import CheckContext, Outcome, check
from hodei.durations import human_age
from hodei.report.model import Status

#: How many parts take_snapshot_with reads (hodei.diagnose.probes).
SNAPSHOT_PARTS = 8


@check(
    "database.snapshot",
    "PostgreSQL",
    "The run's snapshot could be read",
    "database",
    "every part of the run's REPEATABLE READ snapshot (jobs, queue, workers, events, "
    "outbox, logs, servers, schema) reads; a part that fails is named with why "
    "(lock held by pid N, missing table, missing grant) -> FAIL",
)
def database_snapshot(ctx: CheckContext) -> Outcome:
    parts: SnapshotParts | None = ctx.facts.get("snapshot_parts")
    failures = parts.failures if parts is not None else []
    if not failures:
        return Outcome(
            Status.PASS,
            f"{SNAPSHOT_PARTS} parts read in one REPEATABLE READ snapshot",
            "every part readable",
        )
    first = outcome_for(failures[0].error, ctx.session)
    assert first is not None  # a ProbeFailed always has an explanation
    evidence = [f"{f.part}: {f.error}" for f in failures] + first.evidence
    return Outcome(
        Status.FAIL,
        f"{len(failures)} of {SNAPSHOT_PARTS} part(s) unreadable "
        f"({', '.join(f.part for f in failures)}): {first.observed}",
        "every part readable",
        evidence,
        first.finding,
        first.params,
    )


def lock_waits(ctx: CheckContext) -> list[dict[str, Any]]:
    """Sessions waiting on a lock longer than lock_wait_s, one row per blocker (read once
    a run: database.sessions and dispatcher.progress both use them)."""
    if "lock_waits" not in ctx.facts:
        ctx.facts["lock_waits"] = probes(ctx).all(
            "lock_waits", {"age_s": ctx.thresholds.lock_wait_s, "limit": 20}
        )
    return list(ctx.facts["lock_waits"])


def is_hodei(application_name: str | None) -> bool:
    return bool(application_name) and str(application_name).startswith("hodei-")


def blocked_sentence(row: dict[str, Any]) -> str:
    """'pid 12 (hodei-s1-dispatcher) has waited 4 s for a lock on job_queue held by pid 34
    (psql, idle in transaction, transaction open 9 s): LOCK TABLE job_queue ...'."""
    return (
        f"pid {row['pid']} ({row['application_name'] or row['usename']}) has waited "
        f"{human_age(row['waiting_s'])} for a lock on {row['relation'] or '?'} held by "
        f"{session_words(row, 'blocker_')}"
    )


@check(
    "database.sessions",
    "PostgreSQL",
    "No session blocks Hodei",
    "database",
    "a Hodei session (application_name hodei-*) waiting on a lock longer than lock_wait_s "
    "-> FAIL naming the blocker (pid, application_name, state, transaction age, query); "
    "another session holding locks on Hodei tables in a transaction open longer than "
    "long_xact_s, or idle in it longer than idle_xact_s -> WARN",
)
def database_sessions(ctx: CheckContext) -> Outcome:
    t = ctx.thresholds
    waits = [w for w in lock_waits(ctx) if is_hodei(w["application_name"])]
    lingering = probes(ctx).all(
        "lingering_transactions",
        {"long_s": t.long_xact_s, "idle_s": t.idle_xact_s, "limit": 10},
    )
    threshold = (
        f"no Hodei session waits > {human_age(t.lock_wait_s)} on a lock; no transaction on "
        f"Hodei tables open > {human_age(t.long_xact_s)} or idle > {human_age(t.idle_xact_s)}"
    )
    lingering_lines = [
        f"{session_words(r)} holds locks on {', '.join(r['tables'])}"
        + (f", idle for {human_age(r['state_age_s'])}" if "idle" in str(r["state"]) else "")
        for r in lingering
    ]
    if waits:
        first = waits[0]
        return Outcome(
            Status.FAIL,
            f"{len({w['pid'] for w in waits})} Hodei session(s) blocked on a lock",
            threshold,
            [blocked_sentence(w) for w in waits[:5]] + lingering_lines[:3],
            "SESSION_BLOCKED",
            {
                "waiter": f"pid {first['pid']} ({first['application_name']})",
                "wait": human_age(first["waiting_s"]),
                "table": first["relation"] or "?",
                "holder": session_words(first, "blocker_"),
                "pid": first["blocker_pid"],
            },
        )
    if lingering:
        first = lingering[0]
        return Outcome(
            Status.WARN,
            f"{len(lingering)} lingering transaction(s) on Hodei tables",
            threshold,
            lingering_lines,
            "LONG_TRANSACTION",
            {
                "holder": session_words(first),
                "tables": ", ".join(first["tables"]),
                "age": human_age(first["xact_age_s"]),
                "pid": first["pid"],
            },
        )
    return Outcome(Status.PASS, "0 blocked Hodei sessions, 0 lingering transactions", threshold)
