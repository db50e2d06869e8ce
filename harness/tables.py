"""Read-only per-job and per-worker facts the scenarios assert on.

Table-wide snapshots (counts by state, ages, samples) are hodei.diagnose.probes'; this
module answers the narrower questions a scenario asks about *its* job: which
domain events it produced, in what order, whether their outbox rows were
published, whether it left the queue. Every connection is read-only, so the
same code is safe against a live deployment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from hodei.report.model import JobTimes

_QUERIES = {
    "job_events": ("SELECT event_type FROM domain_events WHERE aggregate_id = %s ORDER BY id"),
    "job_outbox": (
        "SELECT o.topic, o.published_at IS NOT NULL FROM outbox_events o"
        " WHERE o.aggregate_id = %s ORDER BY o.id"
    ),
    "job_queued": "SELECT count(*) FROM job_queue WHERE job_id = %s",
    "provisioned_by": "SELECT provider FROM provisioned_workers WHERE worker_id = %s::uuid",
    "provisioning_errors": (
        "SELECT payload ->> 'error' FROM domain_events "
        "WHERE event_type = 'ProvisioningFailed' AND payload ->> 'provider' = %s ORDER BY id"
    ),
    "job_log_lines": ("SELECT is_stderr, line FROM job_logs WHERE job_id = %s ORDER BY sequence"),
    "workers_by_pid": (
        "SELECT pid, state, last_heartbeat, server_id IS NOT NULL FROM workers"
        " WHERE pid = ANY(%s) ORDER BY registered_at"
    ),
    "states_of": "SELECT state, count(*) FROM jobs WHERE id = ANY(%s::uuid[]) GROUP BY state",
    "jobs_by_state": "SELECT state, count(*) FROM jobs GROUP BY state",
    "span_of": (
        "SELECT extract(epoch FROM max(finished_at) - min(created_at)) FROM jobs"
        " WHERE id = ANY(%s::uuid[])"
    ),
    "job_times": (
        "SELECT extract(epoch FROM created_at), extract(epoch FROM started_at),"
        " extract(epoch FROM finished_at) FROM jobs WHERE id = ANY(%s::uuid[])"
        " ORDER BY created_at"
    ),
    "jobs_not_in": (
        "SELECT id::text, state, attempts, exit_code, coalesce(error, '') FROM jobs"
        " WHERE id = ANY(%s::uuid[]) AND state <> %s ORDER BY created_at LIMIT 5"
    ),
    "schema_version": "SELECT coalesce(max(version), 0) FROM schema_migrations",
    "tables_present": (
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        " AND table_name = ANY(%s)"
    ),
}

#: The tables the platform's first migration creates (hodei/db/migrations/0001_initial.sql).
PLATFORM_TABLES = (
    "jobs",
    "job_queue",
    "workers",
    "domain_events",
    "outbox_events",
    "job_logs",
    "server_status",
)


@dataclass(frozen=True)
class WorkerRow:
    pid: int
    state: str
    last_heartbeat: float | None  # epoch seconds
    connected: bool


@contextmanager
def read_only_connection(url: str, connect_timeout_s: int = 5) -> Iterator[psycopg.Connection]:
    """A connection whose every transaction is read-only: safe against a live deployment."""
    with psycopg.connect(
        url,
        autocommit=True,
        connect_timeout=connect_timeout_s,
        options="-c default_transaction_read_only=on",
    ) as conn:
        yield conn


class Tables:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def _rows(self, name: str, *params: Any) -> list[tuple[Any, ...]]:
        with read_only_connection(self.database_url) as conn:
            return list(conn.execute(_QUERIES[name], params or None).fetchall())

    def ping(self) -> float:
        """Round trip of `SELECT 1` in seconds (a new connection each time)."""
        import time

        start = time.perf_counter()
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return time.perf_counter() - start

    def job_events(self, job_id: str) -> list[str]:
        return [str(r[0]) for r in self._rows("job_events", job_id)]

    def job_outbox(self, job_id: str) -> list[tuple[str, bool]]:
        return [(str(r[0]), bool(r[1])) for r in self._rows("job_outbox", job_id)]

    def provisioned_by(self, worker_id: str) -> str:
        """The provider that started this worker ("" when none did)."""
        rows = self._rows("provisioned_by", worker_id)
        return str(rows[0][0]) if rows else ""

    def provisioning_errors(self, provider: str) -> list[str]:
        """The errors of this provider's ProvisioningFailed events, oldest first."""
        return [str(r[0]) for r in self._rows("provisioning_errors", provider)]

    def job_queued(self, job_id: str) -> bool:
        return int(self._rows("job_queued", job_id)[0][0]) > 0

    def job_log_lines(self, job_id: str) -> list[tuple[str, str]]:
        return [
            ("stderr" if r[0] else "stdout", str(r[1])) for r in self._rows("job_log_lines", job_id)
        ]

    def workers_by_pid(self, pids: list[int]) -> list[WorkerRow]:
        return [
            WorkerRow(
                pid=int(r[0]),
                state=str(r[1]),
                last_heartbeat=r[2].timestamp() if r[2] is not None else None,
                connected=bool(r[3]),
            )
            for r in self._rows("workers_by_pid", pids)
        ]

    def states_of(self, job_ids: list[str]) -> dict[str, int]:
        return {str(r[0]): int(r[1]) for r in self._rows("states_of", job_ids)}

    def job_counts(self) -> dict[str, int]:
        """{"submitted": every job in the table, FINAL_STATE: its count} (final states
        with no job left out): what the job counters of the servers must add up to."""
        by_state = {str(r[0]): int(r[1]) for r in self._rows("jobs_by_state")}
        final = ("SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT")
        return {"submitted": sum(by_state.values())} | {
            state: n for state, n in by_state.items() if state in final and n
        }

    def span_of(self, job_ids: list[str]) -> float:
        """Seconds from the first job's creation to the last one's end."""
        value = self._rows("span_of", job_ids)[0][0]
        return float(value) if value is not None else 0.0

    def job_times(self, job_ids: list[str]) -> list[JobTimes]:
        """Each job's created, started and finished times (unix seconds), oldest first."""
        return [
            JobTimes(
                created_at=float(r[0]),
                started_at=None if r[1] is None else float(r[1]),
                finished_at=None if r[2] is None else float(r[2]),
            )
            for r in self._rows("job_times", job_ids)
        ]

    def jobs_not_in(self, job_ids: list[str], state: str) -> list[str]:
        """Up to 5 of those jobs that are not in `state`, described in one line each."""
        return [
            f"{r[0]} {r[1]} attempts={r[2]} exit={r[3]} error={r[4]!r}"
            for r in self._rows("jobs_not_in", job_ids, state)
        ]

    def schema_version(self) -> int:
        return int(self._rows("schema_version")[0][0])

    def tables_present(self) -> int:
        return int(self._rows("tables_present", list(PLATFORM_TABLES))[0][0])
