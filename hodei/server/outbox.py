"""The outbox relay: publishes outbox rows, in id order, as NOTIFY on
settings.outbox_channel and marks them published_at.

Wakes on the NOTIFY that every event-writing transaction sends on an internal
channel, with a polling backstop. Several servers may run it: rows are claimed
with SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from hodei.db.connector import Database
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
_MAX_PAYLOAD = 7900


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
        async with Listener(self.database_url, WAKE_CHANNEL, self.wake) as listener:
            logger.info(
                "outbox relay started (publishing on channel %r)", self.settings.outbox_channel
            )
            while not stop.is_set():
                listener.check()
                self.wake.clear()
                while await self.publish_batch() == BATCH:
                    pass
                await wait_or_stop(stop, self.wake, seconds=self.settings.outbox_poll_interval)
                if self.wake.is_set():
                    # Let a burst of transactions land: one publication round for all of
                    # them instead of one per commit (well within the 1 s target).
                    await wait_or_stop(stop, seconds=_GATHER)
        logger.info("outbox relay stopped")

    async def publish_batch(self) -> int:
        began = time.perf_counter()
        async with self.db.transaction() as tx:
            rows = await tx.all("unpublished_outbox", {"limit": BATCH})
            if not rows:
                return 0
            payloads = []
            for row in rows:
                text = json.dumps(
                    {"outbox_id": row["id"], "topic": row["topic"], "event": row["payload"]},
                    default=str,
                )
                if len(text.encode()) > _MAX_PAYLOAD:
                    text = json.dumps(
                        {"outbox_id": row["id"], "topic": row["topic"], "truncated": True}
                    )
                payloads.append(text)
            # Losing this commit in a crash is harmless: the rows stay unpublished and
            # are published again (delivery is at-least-once; consumers dedupe on
            # outbox_id), and the status row is only a diagnostic. So it need not wait
            # for its WAL flush, which on a busy server was one fsync per round.
            await tx.one("async_commit")
            await tx.one(
                "notify_outbox", {"payloads": payloads, "channel": self.settings.outbox_channel}
            )
            await tx.execute("mark_outbox_published", {"ids": [r["id"] for r in rows]})
            now = time.monotonic()
            if now - self._status_at >= _STATUS_EVERY:
                # In the same transaction: a reader that saw the NOTIFY also sees the status.
                await tx.execute("record_outbox_publish", {"server_id": self.status.server_id})
                self._status_at = now
        self.published_total += len(rows)
        logger.debug(
            "outbox rows published",
            extra={
                "count": len(rows),
                "duration_ms": round((time.perf_counter() - began) * 1000, 2),
            },
        )
        return len(rows)
