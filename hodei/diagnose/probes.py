"""Read-only probes of a Hodei database.

The SQL lives in ``probes.sql`` as named queries (``-- name: x``), like the server's
``hodei/db/queries.sql``. Every probe session opens one connection whose transactions
are READ ONLY with a ``statement_timeout``, so that pointing the harness or
``hodei-diagnose`` at a production database can neither change it nor hang on it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row

from hodei.db.connector import parse_queries
from hodei.errors import Unavailable, first_line
from hodei.redaction import redact
from hodei.report.model import DatabaseSnapshot

Row = dict[str, Any]

#: Default per-statement limit: a probe that takes longer is itself a finding.
STATEMENT_TIMEOUT_MS = 2000
CONNECT_TIMEOUT_S = 3


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

    def all(self, name: str, params: dict[str, Any] | None = None) -> list[Row]:
        try:
            sql = probe_queries()[name]
        except KeyError:
            raise KeyError(f"no probe named {name!r} in probes.sql") from None
        with self.conn.transaction():
            cur = self.conn.execute(sql, params or {})
            return cur.fetchall()

    def one(self, name: str, params: dict[str, Any] | None = None) -> Row:
        rows = self.all(name, params)
        return rows[0] if rows else {}

    def timed_ping(self) -> float:
        """Round trip of a trivial query, in seconds."""
        start = time.perf_counter()
        self.one("server_clock")
        return time.perf_counter() - start

    def snapshot(self, sample: int = 10) -> DatabaseSnapshot:
        return take_snapshot_with(self, sample)


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
            application_name="hodei-probes",
            options=(
                f"-c default_transaction_read_only=on -c statement_timeout={statement_timeout_ms}"
                " -c lock_timeout=500"
            ),
        )
    except psycopg.Error as exc:
        reason = first_line(exc)
        raise Unavailable(f"cannot connect to {redact(database_url)}: {reason}") from None
    conn.read_only = True
    try:
        yield ProbeSession(conn, time.perf_counter() - start)
    finally:
        conn.close()


def _f(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def take_snapshot_with(session: ProbeSession, sample: int = 10) -> DatabaseSnapshot:
    """Everything the report shows about the tables, in one pass."""
    snap = DatabaseSnapshot(taken_at=datetime.now(UTC).isoformat(timespec="milliseconds"))
    snap.schema_version = session.one("schema_version").get("version")
    snap.jobs_by_state = {r["state"]: int(r["n"]) for r in session.all("jobs_by_state")}
    snap.jobs_total = sum(snap.jobs_by_state.values())
    snap.oldest_pending_age_s = _f(session.one("oldest_pending").get("oldest_age_s"))
    queue = session.one("queue_summary")
    snap.queue_depth = int(queue.get("depth") or 0)
    snap.queue_oldest_age_s = _f(queue.get("oldest_age_s"))
    snap.queue_sample = [_rounded(r) for r in session.all("queue_sample", {"limit": sample})]
    snap.workers_by_state = {r["state"]: int(r["n"]) for r in session.all("workers_by_state")}
    snap.workers_sample = [_rounded(r) for r in session.all("workers_sample", {"limit": sample})]
    snap.events_by_type = {r["event_type"]: int(r["n"]) for r in session.all("events_by_type")}
    snap.events_total = sum(snap.events_by_type.values())
    # More events than samples: they draw the report's timeline.
    snap.recent_events = session.all("recent_events", {"limit": max(sample, 40)})
    outbox = session.one("outbox_summary")
    snap.outbox_total = int(outbox.get("total") or 0)
    snap.outbox_unpublished = int(outbox.get("unpublished") or 0)
    snap.outbox_oldest_unpublished_age_s = _f(outbox.get("oldest_unpublished_age_s"))
    snap.job_logs_total = int(session.one("job_logs_count").get("n") or 0)
    snap.servers = [_rounded(r) for r in session.all("server_status", {"limit": sample})]
    return snap


def _rounded(row: Row) -> Row:
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}


def take_snapshot(database_url: str, sample: int = 10) -> DatabaseSnapshot:
    """Open a read-only session, take one snapshot, close."""
    with probe_session(database_url) as session:
        return take_snapshot_with(session, sample)


def lifecycle_events(database_url: str, aggregate_ids: list[str], limit: int = 200) -> list[Row]:
    """Domain events of the given jobs/workers in order (for the report's timeline)."""
    if not aggregate_ids:
        return []
    with probe_session(database_url) as session:
        return session.all("job_events", {"ids": aggregate_ids, "limit": limit})
