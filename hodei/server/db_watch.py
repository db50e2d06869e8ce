"""The database watch: whether this server can reach its database, told to the world.

A supervised loop pings the database every `period` seconds. While it cannot, the
standard grpc.health.v1 service answers NOT_SERVING (so a readiness probe or a load
balancer stops sending work to a server that can only fail it), and SERVING again
once it can. One WARNING when the outage starts and one INFO when it ends, with its
length: no traceback per failed attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from hodei.db.connector import Database
from hodei.errors import first_line
from hodei.server.supervisor import wait_or_stop

logger = logging.getLogger(__name__)

#: Called with True when the database is reachable again, False when it went away.
OnChange = Callable[[bool], Awaitable[None]]


class DatabaseWatch:
    def __init__(self, db: Database, on_change: OnChange, period: float) -> None:
        self.db = db
        self.on_change = on_change
        self.period = period
        #: A ping slower than this counts as a failure: a pool waiting for a connection
        #: to a database that is gone would otherwise wait for its own (long) timeout.
        self.timeout = max(2.0, period)
        self.reachable = True
        self._down_since = 0.0

    async def ping(self) -> None:
        async with self.db.connection() as tx:
            await tx.execute("ping")

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.ping(), self.timeout)
            except Exception as exc:  # any failure to answer is an unreachable database
                await self._went_away(exc)
            else:
                await self._came_back()
            await wait_or_stop(stop, seconds=self.period)

    async def _went_away(self, exc: BaseException) -> None:
        if not self.reachable:
            return
        self.reachable = False
        self._down_since = time.monotonic()
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {self.timeout:.0f} s"
        else:
            reason = first_line(exc)
        logger.warning(
            "database unreachable (%s); health NOT_SERVING, retrying every %.1f s",
            reason,
            self.period,
        )
        await self.on_change(False)

    async def _came_back(self) -> None:
        if self.reachable:
            return
        try:
            await asyncio.wait_for(self.db.check(), self.timeout)
        except Exception as exc:  # not back after all: the next ping says so again
            logger.debug("database answered, but refreshing the pools failed: %s", exc)
            return
        self.reachable = True
        logger.info(
            "database reachable again after %.1f s; health SERVING",
            time.monotonic() - self._down_since,
        )
        await self.on_change(True)
