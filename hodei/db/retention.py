"""Retention: old rows are deleted in small batches, by kind, after settings-defined ages.

One pruner for both the server's background loop (hodei.server.retention) and
`hodei db prune`. Each kind is a pair of named statements in queries.sql:
a batch statement deletes one batch and answers `deleted` and `considered` (plus
counts of the related rows it deleted along), a count statement counts what would go
(`--dry-run`). Both take `age` (seconds), the batch statement also `limit` and `lines`
(it may ignore what it does not need). A new kind is one more `Kind(...)` in KINDS
and one more age in RetentionSettings (or, for an age another group sets, such as the
idempotency window, one more entry in `other_ages`).

Batches lock their rows with SKIP LOCKED: a pruner never waits for the hot path,
and two pruners at once (two servers, or a server and `hodei db prune`) take
different rows, so no row is counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from hodei.db.connector import query
from hodei.settings import RetentionSettings, Settings

#: Session advisory lock the server's retention loop holds for a round, so that of
#: several servers sharing a database only one prunes at a time (migrate uses ..._0001).
LOCK_KEY = 0x40DE1_0002


@dataclass(frozen=True)
class Kind:
    """One kind of row that retention deletes."""

    name: str
    #: What it deletes, for people (the CLI's table).
    title: str
    #: The RetentionSettings field that holds its age (0: kept forever); None when the
    #: age is set elsewhere and passed to prune() in `other_ages` under the kind's name.
    age_setting: str | None
    #: Its statements in queries.sql: one batch, and the dry run's count.
    prune_query: str
    count_query: str
    #: Columns of its statements that count related rows deleted along.
    related: tuple[str, ...] = ()

    def age(self, settings: RetentionSettings, other_ages: Mapping[str, float]) -> float:
        if self.age_setting is None:
            return float(other_ages.get(self.name, 0.0))
        return float(getattr(settings, self.age_setting))


KINDS: tuple[Kind, ...] = (
    Kind(
        "jobs",
        "finished jobs (with log lines, events)",
        "jobs_age",
        "prune_jobs",
        "count_jobs",
        ("log_lines", "events"),
    ),
    Kind("outbox", "published outbox rows", "outbox_age", "prune_outbox", "count_outbox"),
    Kind(
        "workers",
        "TERMINATED and LOST workers",
        "workers_age",
        "prune_workers",
        "count_workers",
        ("events",),
    ),
    Kind(
        "registrations",
        "never-connected registrations",
        "registrations_age",
        "prune_registrations",
        "count_registrations",
        ("events",),
    ),
    # Idempotency keys past their window: a submission would replace them anyway.
    Kind(
        "submission_keys",
        "idempotency keys past their window",
        None,
        "prune_submission_keys",
        "count_submission_keys",
    ),
)


def other_ages(settings: Settings) -> dict[str, float]:
    """The ages of kinds set outside the retention group."""
    return {"submission_keys": settings.submission.idempotency_window}


@dataclass
class KindResult:
    kind: Kind
    #: Its age in seconds; 0 means the kind is kept and was not looked at.
    older_than: float
    deleted: int = 0
    related: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.name,
            "older_than_seconds": self.older_than,
            "rows": self.deleted,
            **self.related,
        }


@dataclass
class PruneReport:
    dry_run: bool
    kinds: list[KindResult]
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(k.deleted for k in self.kinds)

    def counts(self) -> dict[str, int]:
        """Rows per kind, related rows as `kind.column` ({"jobs": 3, "jobs.events": 12})."""
        out: dict[str, int] = {}
        for result in self.kinds:
            out[result.kind.name] = result.deleted
            for column, n in result.related.items():
                out[f"{result.kind.name}.{column}"] = n
        return out


Connection = psycopg.AsyncConnection[dict[str, Any]]


async def connect(url: str) -> Connection:
    """A connection of its own (autocommit): a round holds it, not one of the pool's."""
    return await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)


async def try_lock(conn: Connection) -> bool:
    """Take the retention lock for this session; False when another pruner holds it."""
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (LOCK_KEY,))
    row = await cur.fetchone()
    return bool(row and row["locked"])


async def prune(
    conn: Connection,
    settings: RetentionSettings,
    *,
    dry_run: bool = False,
    stop: asyncio.Event | None = None,
    ages: Mapping[str, float] | None = None,
) -> PruneReport:
    """Delete (or with dry_run, count) every kind's rows older than its age.

    Each batch is one autocommit statement; between two batches the pruner pauses
    `batch_pause` seconds so the hot path keeps the database. A set `stop` ends the
    round after the current batch.
    """
    began = time.monotonic()
    results = []
    for kind in KINDS:
        result = KindResult(kind, kind.age(settings, ages or {}))
        results.append(result)
        if result.older_than <= 0 or (stop is not None and stop.is_set()):
            continue
        if dry_run:
            await _count(conn, result)
        else:
            await _delete(conn, settings, result, stop)
    return PruneReport(dry_run, results, time.monotonic() - began)


async def _count(conn: Connection, result: KindResult) -> None:
    cur = await conn.execute(query(result.kind.count_query), {"age": result.older_than})
    row = await cur.fetchone()
    assert row is not None
    result.deleted = int(row["deleted"])
    result.related = {column: int(row[column]) for column in result.kind.related}


async def _delete(
    conn: Connection, settings: RetentionSettings, result: KindResult, stop: asyncio.Event | None
) -> None:
    params = {
        "age": result.older_than,
        "limit": settings.batch_size,
        "lines": settings.batch_log_lines,
    }
    result.related = dict.fromkeys(result.kind.related, 0)
    while True:
        cur = await conn.execute(query(result.kind.prune_query), params, prepare=True)
        row = await cur.fetchone()
        assert row is not None
        deleted, considered = int(row["deleted"]), int(row["considered"])
        result.batches += 1
        result.deleted += deleted
        for column in result.kind.related:
            result.related[column] += int(row[column])
        # A short batch that deleted all it considered was the last (rows another
        # pruner holds are skipped: they are its to delete); the jobs' line budget may
        # leave some of a batch for the next. Nothing deleted: no progress to make.
        if deleted == 0 or (considered < settings.batch_size and deleted == considered):
            return
        if stop is None:
            await asyncio.sleep(settings.batch_pause)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.batch_pause)
        if stop.is_set():
            return
