"""Services on a real database, driven directly (no gRPC): the fixture and helpers
the transition tests share."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest

from hodei.db.connector import Database
from hodei.server.services import Services
from hodei.settings import Settings

SERVER = "test-server"


@pytest.fixture
async def services(db_url: str) -> AsyncIterator[Services]:
    db = Database(db_url, 1, 4)
    await db.open()
    settings = Settings(database={"url": db_url}, dispatcher={"ack_timeout": 30})
    try:
        yield Services.build(settings, SERVER, datetime.now(UTC), db)
    finally:
        await db.close()


def snapshot(db_url: str) -> dict[str, object]:
    """Everything a transition may touch."""
    with psycopg.connect(db_url) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("jobs", "job_queue", "workers", "domain_events", "outbox_events")
        }


def events_and_outbox(db_url: str, aggregate: uuid.UUID) -> list[tuple[str, bool]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT d.event_type, o.id IS NOT NULL FROM domain_events d "
            "LEFT JOIN outbox_events o ON o.event_id = d.id "
            "WHERE d.aggregate_id = %s ORDER BY d.id",
            (aggregate,),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


async def ready_worker(s: Services, slots: int = 1) -> uuid.UUID:
    worker = await s.workers.register("w", "host", 1, slots, "t", {})
    await s.workers.connect(worker.id, [], slots)
    return worker.id
