"""The outbox relay: publishes outbox rows, in id order, as NOTIFY on
settings.outbox_channel and marks them published_at.

Wakes on the NOTIFY that every event-writing transaction sends on an internal
channel, with a polling backstop. Several servers may run it: rows are claimed
with SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import logging
import time

from hodei.db.connector import Database, use_role
from hodei.metrics import server_metrics
from hodei.server.listener import Listener
from hodei.server.status import ServerStatus
from hodei.server.supervisor import wait_or_stop
from hodei.settings import Settings

logger = logging.getLogger(__name__)

WAKE_CHANNEL = "hodei_outbox_wake"
BATCH = 2000
#: Seconds to gather further outbox rows after a wake-up before publishing.
_GATHER = 0.05
#: outbox_last_publish_at is a diagnostic: writing it once a second is enough.
_STATUS_EVERY = 1.0
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
_MAX_PAYLOAD = 8000


class OutboxRelay:
    def __init__(
        self, settings: Settings, database_url: str, db: Database, status: ServerStatus
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.db = db
        self.status = status
        self.wake = asyncio.Event()
        self.published_total = 0
        self._status_at = -_STATUS_EVERY

    async def run(self, stop: asyncio.Event) -> None:
        use_role("relay")
        async with Listener(self.database_url, WAKE_CHANNEL, self.wake) as listener:
            logger.info(
                "outbox relay started (publishing on channel %r)",
                self.settings.server.outbox_channel,
            )
            while not stop.is_set():
                listener.check()
                self.wake.clear()
                while await self.publish_batch() == BATCH:
                    pass
                await wait_or_stop(
                    stop, self.wake, seconds=self.settings.server.outbox_poll_interval
                )
                if self.wake.is_set():
                    # Let a burst of transactions land: one publication round for all of
                    # them instead of one per commit (well within the 1 s target).
                    await wait_or_stop(stop, seconds=_GATHER)
        logger.info("outbox relay stopped")

    async def publish_batch(self) -> int:
        """One round (queries.sql `publish_outbox`): how many rows were published."""
        began = time.perf_counter()
        now = time.monotonic()
        record_status = now - self._status_at >= _STATUS_EVERY
        async with self.db.connection() as tx:
            row = await tx.one(
                "publish_outbox",
                {
                    "limit": BATCH,
                    "channel": self.settings.server.outbox_channel,
                    "max_payload": _MAX_PAYLOAD,
                    "server_id": self.status.server_id,
                    "record_status": record_status,
                },
            )
        published = int(row["published"]) if row else 0
        if published and record_status:
            self._status_at = now
        self.published_total += published
        server_metrics().outbox_published.inc(published)
        if published:
            logger.debug(
                "outbox rows published",
                extra={
                    "count": published,
                    "duration_ms": round((time.perf_counter() - began) * 1000, 2),
                },
            )
        return published
