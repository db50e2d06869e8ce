"""What a failed database probe means, as a finding that says what failed.

A probe can fail because another session holds a lock on a table it reads (named, with
who holds it), because a table or column is missing (a schema finding naming it), for
want of a privilege (naming the grant), because the connection was lost, or on a
timeout. The runner turns every failure of a check into one of these; nothing ends in
"internal error".
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from hodei.diagnose.outcome import Outcome
from hodei.diagnose.probes import ProbeFailed, ProbeSession
from hodei.durations import human_age
from hodei.errors import first_line
from hodei.redaction import redact_text
from hodei.report.model import Status

#: What a session's query shows at most in a sentence.
QUERY_CHARS = 120
_QUOTED = re.compile(r'"([^"]+)"')
_COLUMN = re.compile(r"column (\S+) does not exist")
_PRIVILEGE = re.compile(r"permission denied for (?:table|relation|view|sequence|schema) (\S+)")


def session_words(row: dict[str, Any], prefix: str = "") -> str:
    """'pid 123 (psql, idle in transaction, transaction open 12 s): LOCK TABLE ...'."""
    app = row.get(f"{prefix}application_name") or row.get(f"{prefix}application")
    who = app or row.get(f"{prefix}usename") or row.get(f"{prefix}user") or "no application_name"
    age = row.get(f"{prefix}xact_age_s")
    open_for = f", transaction open {human_age(age)}" if age is not None else ""
    query = redact_text(str(row.get(f"{prefix}query") or ""))[:QUERY_CHARS]
    state = row.get(f"{prefix}state") or "?"
    return f"pid {row.get(f'{prefix}pid')} ({who}, {state}{open_for}): {query}"


def outcome_for(exc: BaseException, session: ProbeSession | None) -> Outcome | None:
    """The finding for a failed probe (None: not a database failure)."""
    if isinstance(exc, ProbeFailed):
        return _probe_outcome(exc, session)
    if isinstance(exc, psycopg.Error):
        return _probe_outcome(ProbeFailed("?", "", exc), session)
    return None


def _probe_outcome(failure: ProbeFailed, session: ProbeSession | None) -> Outcome:
    err = failure.error
    message = (err.diag.message_primary if err.diag else None) or first_line(err)
    probe = failure.probe
    if isinstance(err, pg_errors.LockNotAvailable):
        return _lock_timeout(failure, session)
    if isinstance(err, pg_errors.UndefinedTable | pg_errors.UndefinedColumn):
        kind = "table" if isinstance(err, pg_errors.UndefinedTable) else "column"
        match = _QUOTED.search(message) or _COLUMN.search(message)
        name = match.group(1) if match else message
        return Outcome(
            Status.FAIL,
            f"probe {probe}: {message}",
            "every table and column of the schema present",
            [f"probe {probe}: {message}"],
            "SCHEMA_OBJECT_MISSING",
            {"kind": kind, "name": name, "probe": probe},
        )
    if isinstance(err, pg_errors.InsufficientPrivilege):
        match = _PRIVILEGE.search(message)
        obj = match.group(1) if match else "?"
        role = session.conn.info.user if session is not None else "?"
        return Outcome(
            Status.FAIL,
            f"probe {probe}: {message}",
            "SELECT on every Hodei table",
            [f"probe {probe}: {message}"],
            "DB_PRIVILEGE_MISSING",
            {"grant": f"SELECT on {obj}", "role": role, "object": obj, "probe": probe},
        )
    if isinstance(err, pg_errors.QueryCanceled):
        return Outcome(
            Status.FAIL,
            f"probe {probe}: {message}",
            "each probe within its statement_timeout",
            [f"probe {probe}: {message}"],
            "DB_PROBE_TIMEOUT",
            {"probe": probe, "error": message},
        )
    if isinstance(err, psycopg.OperationalError):
        # The connection went away mid-run (a restart, a terminated backend, a network cut).
        reason = first_line(err)
        return Outcome(
            Status.FAIL,
            f"connection lost: {reason}",
            "the connection stays open",
            [f"probe {probe}: {reason}"],
            "DATABASE_UNREACHABLE",
            {"database": "the database", "error": f"connection lost: {reason}"},
        )
    return Outcome(
        Status.FAIL,
        f"probe {probe}: {message}",
        "every probe runs",
        [f"probe {probe}: SQLSTATE {err.sqlstate}: {message}"],
        "DB_PROBE_FAILED",
        {"probe": probe, "sqlstate": err.sqlstate or "?", "error": message},
    )


def _lock_timeout(failure: ProbeFailed, session: ProbeSession | None) -> Outcome:
    """Name the table and who holds it: pg_locks + pg_stat_activity, as the session
    sees them right after its own wait gave up."""
    holders: list[dict[str, Any]] = []
    if session is not None:
        try:
            holders = session.all("relation_lock_holders", {"limit": 10})
        except ProbeFailed:
            holders = []
    # The holder of a relation this probe reads; else any ACCESS EXCLUSIVE holder.
    read = [h for h in holders if re.search(rf"\b{re.escape(str(h['relation']))}\b", failure.sql)]
    candidates = read or holders
    holder = candidates[0] if candidates else None
    wait = human_age((session.lock_timeout_ms if session else 500) / 1000)
    evidence = [f"{h['relation']}: {h['mode']} held by {session_words(h)}" for h in holders[:5]]
    if holder is None:
        return Outcome(
            Status.FAIL,
            f"probe {failure.probe}: lock timeout after {wait}; the holder has gone",
            f"no lock held longer than {wait}",
            evidence,
            "DB_LOCK_TIMEOUT",
            {"table": "?", "holder": "a session that has since released it", "wait": wait},
        )
    if session is not None:
        session.note_locked(str(holder["relation"]), failure)
    return Outcome(
        Status.FAIL,
        f"probe {failure.probe} waited {wait} for a lock on {holder['relation']}",
        f"no lock held longer than {wait}",
        evidence,
        "DB_LOCK_TIMEOUT",
        {
            "table": holder["relation"],
            "mode": holder["mode"],
            "holder": session_words(holder),
            "pid": holder["pid"],
            "wait": wait,
        },
    )
