"""Read-only probes of a Hodei database.

The SQL lives in ``probes.sql`` as named queries (``-- name: x``), like the server's
``hodei/db/queries.sql``. Every probe session opens one connection whose transactions
are READ ONLY with a ``statement_timeout`` and a ``lock_timeout``, so that pointing the
harness or ``hodei-diagnose`` at a production database can neither change it nor hang on
it. Within ``ProbeSession.consistent()`` every probe reads one REPEATABLE READ snapshot
(each in a savepoint: one that fails leaves the others, and the snapshot, intact).

A failing connection raises ``DatabaseConnectFailed`` with a finding code saying how it
failed; a failing probe raises ``ProbeFailed`` naming the probe (hodei.diagnose.failures
turns both into findings).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row

from hodei.db.connector import parse_queries
from hodei.errors import Unavailable, first_line
from hodei.redaction import redact, redact_text
from hodei.report.model import DatabaseSnapshot

Row = dict[str, Any]

#: Default per-statement limit: a probe that takes longer is itself a finding.
STATEMENT_TIMEOUT_MS = 2000
#: A probe waits this long for a lock (an ACCESS EXCLUSIVE one: a reader waits on no
#: other), then fails, and the diagnosis names who holds it.
LOCK_TIMEOUT_MS = 500
CONNECT_TIMEOUT_S = 3
#: What the doctor's own session is called in pg_stat_activity.
APPLICATION_NAME = "hodei-diagnose"

# How a connection attempt failed, from libpq's message (a refused connection carries no
# SQLSTATE). Checked in this order: libpq tries every address of a host and reports
# them all, so "refused" on ::1 may come before the real answer from 127.0.0.1.
_CONNECT_FAILURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "DATABASE_REFUSING_CONNECTIONS",
        re.compile(
            r"too many (connections|clients)|remaining connection slots|connection limit",
            re.IGNORECASE,
        ),
    ),
    (
        "DATABASE_CREDENTIALS_REJECTED",
        re.compile(
            r"authentication failed|role \S+ does not exist|no pg_hba\.conf entry|"
            r"no password supplied|not permitted to log in",
            re.IGNORECASE,
        ),
    ),
    ("DATABASE_MISSING", re.compile(r"database \S+ does not exist", re.IGNORECASE)),
    ("DATABASE_TIMEOUT", re.compile(r"timeout expired|timed out", re.IGNORECASE)),
    (
        "DATABASE_DOWN",
        re.compile(r"connection refused|no such file or directory", re.IGNORECASE),
    ),
)


def connect_failure_code(message: str) -> str:
    """The finding code of a failed connection attempt, from libpq's message."""
    for code, pattern in _CONNECT_FAILURES:
        if pattern.search(message):
            return code
    return "DATABASE_UNREACHABLE"


class DatabaseConnectFailed(Unavailable):
    """The probe session could not connect; `finding` says how (refused, timed out...)."""

    def __init__(self, message: str, finding: str, reason: str) -> None:
        super().__init__(message)
        self.finding = finding
        self.reason = reason


class ProbeFailed(Exception):
    """A named probe failed in the database (lock timeout, missing table, privilege...)."""

    def __init__(self, probe: str, sql: str, error: psycopg.Error) -> None:
        super().__init__(f"probe {probe} failed: {first_line(error)}")
        self.probe = probe
        self.sql = sql
        self.error = error


@dataclass
class SnapshotFailure:
    """A part of the snapshot that could not be read (the rest still is)."""

    part: str
    error: ProbeFailed


@dataclass
class SnapshotParts:
    failures: list[SnapshotFailure] = field(default_factory=list)


@cache
def probe_queries() -> dict[str, str]:
    text = resources.files("hodei.diagnose").joinpath("probes.sql").read_text("utf-8")
    return parse_queries(text)


class ProbeSession:
    """One read-only connection; each call runs a named query from probes.sql."""

    def __init__(self, conn: psycopg.Connection[Row], connect_s: float) -> None:
        self.conn = conn
        #: How long connecting took (the database latency a check reports).
        self.connect_s = connect_s
        self.lock_timeout_ms = LOCK_TIMEOUT_MS
        #: Relations a probe found locked: later probes that read them fail at once
        #: with the same error instead of each waiting out the lock timeout again.
        self.locked: dict[str, ProbeFailed] = {}
        self.in_snapshot = False

    def all(self, name: str, params: dict[str, Any] | None = None) -> list[Row]:
        try:
            sql = probe_queries()[name]
        except KeyError:
            raise KeyError(f"no probe named {name!r} in probes.sql") from None
        for relation, failure in self.locked.items():
            if re.search(rf"\b{re.escape(relation)}\b", sql):
                raise ProbeFailed(name, sql, failure.error)
        try:
            # A savepoint inside consistent(), a transaction of its own outside it.
            with self.conn.transaction():
                cur = self.conn.execute(sql, params or {})
                return cur.fetchall()
        except psycopg.Error as exc:
            raise ProbeFailed(name, sql, exc) from exc

    def note_locked(self, relation: str, failure: ProbeFailed) -> None:
        self.locked[relation] = failure

    @contextmanager
    def consistent(self) -> Iterator[None]:
        """Every probe inside reads one REPEATABLE READ READ ONLY snapshot: the figures of
        one run add up. Its AccessShare locks last as long (a few seconds; DDL waits)."""
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        self.in_snapshot = True
        try:
            yield
        finally:
            self.in_snapshot = False
            with contextlib.suppress(psycopg.Error):
                self.conn.execute("COMMIT")

    def one(self, name: str, params: dict[str, Any] | None = None) -> Row:
        rows = self.all(name, params)
        return rows[0] if rows else {}

    def timed_ping(self) -> float:
        """Round trip of a trivial query, in seconds."""
        start = time.perf_counter()
        self.one("server_clock")
        return time.perf_counter() - start

    def snapshot(self, sample: int = 10, parts: SnapshotParts | None = None) -> DatabaseSnapshot:
        return take_snapshot_with(self, sample, parts)


@contextmanager
def probe_session(
    database_url: str,
    *,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
) -> Iterator[ProbeSession]:
    """Open a read-only session; raises Unavailable with a one-line, redacted message."""
    start = time.perf_counter()
    try:
        conn = psycopg.connect(
            database_url,
            connect_timeout=max(1, round(connect_timeout_s)),
            autocommit=True,
            row_factory=dict_row,
            application_name=APPLICATION_NAME,
            options=(
                f"-c default_transaction_read_only=on -c statement_timeout={statement_timeout_ms}"
                f" -c lock_timeout={LOCK_TIMEOUT_MS}"
            ),
        )
    except psycopg.Error as exc:
        reason = _connect_reason(str(exc))
        raise DatabaseConnectFailed(
            f"cannot connect to {redact(database_url)}: {reason}",
            connect_failure_code(str(exc)),
            reason,
        ) from None
    conn.read_only = True
    try:
        yield ProbeSession(conn, time.perf_counter() - start)
    finally:
        conn.close()


def _connect_reason(message: str) -> str:
    """libpq's answer without its per-address preamble: the line that says why
    (FATAL: ..., Connection refused, timeout expired)."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    for _code, pattern in _CONNECT_FAILURES:
        for line in lines:
            if pattern.search(line):
                return redact_text(_after_failed(line))
    return redact_text(_after_failed(lines[0])) if lines else "no answer"


def _after_failed(line: str) -> str:
    # 'connection to server at "h" (127.0.0.1), port 5432 failed: FATAL:  too many ...'
    _, sep, tail = line.rpartition(" failed: ")
    return " ".join((tail if sep else line).split())


def _f(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def take_snapshot_with(
    session: ProbeSession, sample: int = 10, parts: SnapshotParts | None = None
) -> DatabaseSnapshot:
    """Everything the report shows about the tables, in one pass.

    With `parts`, each part that fails is noted there and the others are still read
    (a locked or dropped table hides only its own figures); without, the first failure
    raises."""
    snap = DatabaseSnapshot(taken_at=datetime.now(UTC).isoformat(timespec="milliseconds"))

    def part(name: str, read: Any) -> None:
        try:
            read()
        except ProbeFailed as exc:
            if parts is None:
                raise
            parts.failures.append(SnapshotFailure(name, exc))

    def schema() -> None:
        snap.schema_version = session.one("schema_version").get("version")

    def jobs() -> None:
        snap.jobs_by_state = {r["state"]: int(r["n"]) for r in session.all("jobs_by_state")}
        snap.jobs_total = sum(snap.jobs_by_state.values())
        snap.oldest_pending_age_s = _f(session.one("oldest_pending").get("oldest_age_s"))

    def queue() -> None:
        summary = session.one("queue_summary")
        snap.queue_depth = int(summary.get("depth") or 0)
        snap.queue_oldest_age_s = _f(summary.get("oldest_age_s"))
        snap.queue_sample = [_rounded(r) for r in session.all("queue_sample", {"limit": sample})]

    def workers() -> None:
        snap.workers_by_state = {r["state"]: int(r["n"]) for r in session.all("workers_by_state")}
        snap.workers_sample = [
            _rounded(r) for r in session.all("workers_sample", {"limit": sample})
        ]

    def events() -> None:
        snap.events_by_type = {r["event_type"]: int(r["n"]) for r in session.all("events_by_type")}
        snap.events_total = sum(snap.events_by_type.values())
        # More events than samples: they draw the report's timeline.
        snap.recent_events = session.all("recent_events", {"limit": max(sample, 40)})

    def outbox() -> None:
        summary = session.one("outbox_summary")
        snap.outbox_total = int(summary.get("total") or 0)
        snap.outbox_unpublished = int(summary.get("unpublished") or 0)
        snap.outbox_oldest_unpublished_age_s = _f(summary.get("oldest_unpublished_age_s"))

    def logs() -> None:
        snap.job_logs_total = int(session.one("job_logs_count").get("n") or 0)

    def servers() -> None:
        snap.servers = [_rounded(r) for r in session.all("server_status", {"limit": sample})]

    for name, read in (
        ("schema_migrations", schema),
        ("jobs", jobs),
        ("job_queue", queue),
        ("workers", workers),
        ("domain_events", events),
        ("outbox_events", outbox),
        ("job_logs", logs),
        ("server_status", servers),
    ):
        part(name, read)
    return snap


def _rounded(row: Row) -> Row:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}


def take_snapshot(database_url: str, sample: int = 10) -> DatabaseSnapshot:
    """Open a read-only session, take one snapshot, close."""
    with probe_session(database_url) as session, session.consistent():
        return take_snapshot_with(session, sample)


def lifecycle_events(database_url: str, aggregate_ids: list[str], limit: int = 200) -> list[Row]:
    """Domain events of the given jobs/workers in order (for the report's timeline)."""
    if not aggregate_ids:
        return []
    with probe_session(database_url) as session:
        return session.all("job_events", {"ids": aggregate_ids, "limit": limit})
