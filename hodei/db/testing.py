"""An in-memory stand-in for `Database`, for unit tests that need no PostgreSQL.

Like procrastinate's InMemoryConnector, it implements named queries in Python,
here those of the log path (ingestion, reading, following), which is where the
ordering logic worth testing cheaply lives. A query it does not implement raises
NotImplementedError with its name; integration tests cover the rest on a real
database. A transaction that raises is rolled back (the storage is restored).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from hodei.db.connector import Params, Row
from hodei.db.copy_format import decode_log_rows

Handler = Callable[[dict[str, Any]], list[Row]]


class InMemoryTx:
    def __init__(self, db: InMemoryDatabase) -> None:
        self.db = db

    def _run(self, name: str, params: Params) -> list[Row]:
        handler = self.db.handlers.get(name)
        if handler is None:
            raise NotImplementedError(f"the in-memory database does not implement {name!r}")
        if params is not None and not isinstance(params, dict):
            raise TypeError("the in-memory database takes named parameters only")
        return handler(dict(params or {}))

    async def one(self, name: str, params: Params = None) -> Row | None:
        rows = self._run(name, params)
        return rows[0] if rows else None

    async def all(self, name: str, params: Params = None) -> list[Row]:
        return self._run(name, params)

    async def execute(self, name: str, params: Params = None) -> int:
        return len(self._run(name, params))

    async def copy_data(self, name: str, pieces: Iterable[bytes]) -> None:
        handler = self.db.copy_handlers.get(name)
        if handler is None:
            raise NotImplementedError(f"the in-memory database does not implement {name!r}")
        handler(b"".join(pieces))


class InMemoryDatabase:
    """Tables as lists/dicts of rows; `handlers` maps query names to Python code."""

    def __init__(self) -> None:
        self.jobs: dict[uuid.UUID, Row] = {}
        self.job_logs: list[Row] = []
        self.handlers: dict[str, Handler] = {
            "get_job": self._get_job,
            "lock_job": self._get_job,
            "job_log_state": self._job_log_state,
            "advance_log_cursor": self._advance_log_cursor,
            "get_logs": self._get_logs,
        }
        self.copy_handlers: dict[str, Callable[[bytes], None]] = {
            "copy_logs": self._copy_logs,
        }

    # ---- the Database interface ------------------------------------------------------

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[InMemoryTx]:
        saved = copy.deepcopy((self.jobs, self.job_logs))
        try:
            yield InMemoryTx(self)
        except BaseException:
            self.jobs, self.job_logs = saved
            raise

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[InMemoryTx]:
        yield InMemoryTx(self)

    # ---- fixtures ------------------------------------------------------------------------

    def add_job(
        self,
        state: str = "RUNNING",
        attempts: int = 1,
        worker_id: uuid.UUID | None = None,
        **columns: Any,
    ) -> Row:
        now = datetime.now(UTC)
        row: Row = {
            "id": uuid.uuid4(),
            "name": "",
            "command": ["true"],
            "env": {},
            "working_dir": "",
            "timeout_seconds": None,
            "labels": {},
            "state": state,
            "attempts": attempts,
            "max_attempts": 3,
            "worker_id": worker_id,
            "exit_code": None,
            "error": None,
            "correlation_id": "",
            "cancel_requested_at": None,
            "log_seq": 0,
            "attempt_lines": 0,
            "created_at": now,
            "updated_at": now,
            "assigned_at": now,
            "started_at": now,
            "finished_at": None,
            "ack_deadline": None,
        }
        row.update(columns)
        self.jobs[row["id"]] = row
        return row

    # ---- queries ---------------------------------------------------------------------

    def _get_job(self, p: dict[str, Any]) -> list[Row]:
        row = self.jobs.get(p["id"])
        return [dict(row)] if row is not None else []

    def _job_log_state(self, p: dict[str, Any]) -> list[Row]:
        row = self.jobs.get(p["id"])
        return [{"state": row["state"], "log_seq": row["log_seq"]}] if row else []

    def _copy_logs(self, data: bytes) -> None:
        taken = {(r["job_id"], r["sequence"]) for r in self.job_logs}
        fresh = []
        for job_id, sequence, attempt, err, line, ts in decode_log_rows(data):
            if (job_id, sequence) in taken:
                raise ValueError(f"duplicate key {(job_id, sequence)}")  # the primary key
            fresh.append(
                {
                    "job_id": job_id,
                    "sequence": sequence,
                    "attempt": attempt,
                    "is_stderr": err,
                    "line": line,
                    "ts_us": ts,
                }
            )
        self.job_logs.extend(fresh)

    def _advance_log_cursor(self, p: dict[str, Any]) -> list[Row]:
        row = self.jobs[p["id"]]
        row["log_seq"] += p["rows"]
        row["attempt_lines"] += p["lines"]
        return [{"log_seq": row["log_seq"], "attempt_lines": row["attempt_lines"]}]

    def _get_logs(self, p: dict[str, Any]) -> list[Row]:
        rows = sorted(
            (r for r in self.job_logs if r["job_id"] == p["id"] and r["sequence"] > p["after"]),
            key=lambda r: r["sequence"],
        )
        page: list[Row] = []
        size = 0
        for r in rows[: p["limit"]]:
            size += len(r["line"].encode()) + p.get("overhead", 0)
            if page and size > p.get("max_bytes", size):
                break
            page.append(dict(r))
        return page
