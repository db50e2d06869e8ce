"""The database-wide gauges: one supervised loop ("metrics-refresh") reads them every
`metrics.refresh_interval` seconds with one read-only statement (queries.sql
`metrics_snapshot`) on a connection of its own (`hodei-<id>-metrics` in
pg_stat_activity), so a scrape never waits on the database and no job pays for it.

Every server runs it: each replica reports the same figures, aggregated with max. When
the database is away the statement fails, the Supervisor says so once and retries; the
gauges keep their last values and hodei_database_up (the database watch) says 0.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
from psycopg.rows import dict_row

from hodei.db.connector import query
from hodei.metrics import ServerMetrics
from hodei.server.supervisor import wait_or_stop

logger = logging.getLogger(__name__)


class MetricsRefresh:
    def __init__(self, metrics: ServerMetrics, database_url: str, period: float) -> None:
        self.metrics = metrics
        self.database_url = database_url
        self.period = period
        self.refreshed = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True, row_factory=dict_row
        ) as conn:
            while not stop.is_set():
                await self.refresh(conn)
                await wait_or_stop(stop, seconds=self.period)

    async def refresh(self, conn: psycopg.AsyncConnection[dict[str, object]]) -> None:
        cursor = await conn.execute(query("metrics_snapshot"), prepare=True)
        row = await cursor.fetchone()
        assert row is not None  # one row, always
        self.metrics.snapshot(row)
        self.refreshed += 1
