"""The retention loop: every `retention.interval` seconds one pruning round
(hodei.db.retention), in small batches, on a connection of its own.

Several servers may share a database: the round runs under a session advisory
lock (hodei.db.retention.LOCK_KEY) and a server that does not get it skips the
round; if the connection dies, PostgreSQL releases the lock with it.
"""

from __future__ import annotations

import asyncio
import logging

from hodei.db import retention
from hodei.server.supervisor import wait_or_stop
from hodei.settings import Settings

logger = logging.getLogger(__name__)


class RetentionLoop:
    def __init__(self, settings: Settings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self.rounds = 0
        self.skipped = 0
        self.deleted_total = 0

    async def run(self, stop: asyncio.Event) -> None:
        kept = self.settings.retention
        ages = retention.other_ages(self.settings)
        logger.info(
            "retention loop started (every %.0f s; %s)",
            kept.interval,
            ", ".join(
                f"{kind.name} after {kind.age(kept, ages):.0f} s"
                if kind.age(kept, ages)
                else f"{kind.name} kept"
                for kind in retention.KINDS
            ),
        )
        while not stop.is_set():
            await self.round(stop)
            await wait_or_stop(stop, seconds=kept.interval)
        logger.info("retention loop stopped")

    async def round(self, stop: asyncio.Event) -> retention.PruneReport | None:
        """One round; None when another server holds the retention lock."""
        conn = await retention.connect(self.database_url)
        async with conn:
            if not await retention.try_lock(conn):
                self.skipped += 1
                logger.debug("retention round skipped: another server is pruning")
                return None
            # Closing the connection (end of the block) releases the lock.
            report = await retention.prune(
                conn,
                self.settings.retention,
                stop=stop,
                ages=retention.other_ages(self.settings),
            )
        self.rounds += 1
        self.deleted_total += report.total
        if report.total:
            counts = report.counts()
            logger.info(
                "retention round deleted %s",
                " ".join(f"{name}={n}" for name, n in counts.items() if n),
                extra={"deleted": counts, "duration_ms": round(report.seconds * 1000, 1)},
            )
        return report
