"""Named background tasks that are restarted when they crash, and all stop together.

The seed's fault was a dispatcher loop that was started, dropped and never ran,
with nothing in the logs. Here every loop is a named task; a crash is logged at
ERROR with its traceback and the loop restarted with capped exponential backoff;
a loop that returns while the server runs is treated as a crash too.

A crash because the database is unreachable is not a bug: each loop says so once, at
WARNING and without a traceback, keeps retrying quietly, and says once, at INFO, that
it runs again when the database watch reports the database back (`database_back`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from hodei.db.connector import DATABASE_DOWN
from hodei.errors import first_line

logger = logging.getLogger(__name__)

LoopFactory = Callable[[asyncio.Event], Awaitable[None]]

#: A loop that ran this long before crashing restarts with the initial backoff.
_HEALTHY_AFTER = 30.0


class Supervisor:
    def __init__(
        self, stop: asyncio.Event, initial_backoff: float = 0.1, max_backoff: float = 10.0
    ) -> None:
        self.stop = stop
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.restarts: dict[str, int] = {}
        #: Loops that said "database unreachable" and have not yet said they run again.
        self.waiting_for_database: set[str] = set()

    def start(self, name: str, loop: LoopFactory) -> None:
        """Run `loop(stop)` under supervision as task `name`."""
        if name in self.tasks:
            raise ValueError(f"task {name!r} already supervised")
        self.restarts[name] = 0
        self.tasks[name] = asyncio.create_task(self._supervise(name, loop), name=name)

    async def _supervise(self, name: str, loop: LoopFactory) -> None:
        backoff = self.initial_backoff
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                await loop(self.stop)
                if self.stop.is_set():
                    return
                logger.error(
                    "%s returned while the server runs; restarting", name, extra={"task": name}
                )
            except asyncio.CancelledError:
                raise
            except DATABASE_DOWN as exc:
                if time.monotonic() - began > _HEALTHY_AFTER:
                    # It ran well since: a new outage, even if no "back" was seen (a
                    # blip the database watch's pings missed).
                    self.waiting_for_database.discard(name)
                self._database_away(name, exc)
            except Exception:
                logger.exception(
                    "%s crashed; restarting in %.1f s", name, backoff, extra={"task": name}
                )
            self.restarts[name] += 1
            if time.monotonic() - began > _HEALTHY_AFTER:
                backoff = self.initial_backoff
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), backoff)
            backoff = min(backoff * 2, self.max_backoff)

    def _database_away(self, name: str, exc: BaseException) -> None:
        if name in self.waiting_for_database:
            logger.debug("%s: database still unreachable: %s", name, first_line(exc))
            return
        self.waiting_for_database.add(name)
        logger.warning(
            "%s: database unreachable (%s); retrying, at most every %.0f s",
            name,
            first_line(exc),
            self.max_backoff,
            extra={"task": name},
        )

    def database_back(self) -> None:
        """The database answers again (the database watch saw it): one INFO per loop
        that had said it was waiting for it."""
        for name in sorted(self.waiting_for_database):
            logger.info("%s: database reachable again; running", name, extra={"task": name})
        self.waiting_for_database.clear()

    def alive(self, name: str) -> bool:
        task = self.tasks.get(name)
        return task is not None and not task.done()

    async def stop_all(self, grace: float = 5.0) -> None:
        """Set the stop event, give the loops `grace` seconds, then cancel the rest."""
        self.stop.set()
        if not self.tasks:
            return
        _, pending = await asyncio.wait(self.tasks.values(), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


async def wait_or_stop(stop: asyncio.Event, *events: asyncio.Event, seconds: float) -> None:
    """Sleep until `seconds` pass, `stop` is set, or one of `events` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in (stop, *events)]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
