"""A dedicated autocommit connection that LISTENs on a channel and sets an event
on every notification. NOTIFY is only a hint: its users also poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)


class Listener:
    def __init__(self, url: str, channel: str, wake: asyncio.Event) -> None:
        self.url = url
        self.channel = channel
        self.wake = wake
        self._conn: psycopg.AsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Listener:
        self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        await self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        self._task = asyncio.create_task(self._pump(), name=f"listen:{self.channel}")
        return self

    async def _pump(self) -> None:
        assert self._conn is not None
        async for _ in self._conn.notifies():
            self.wake.set()

    def check(self) -> None:
        """Raise the listener's failure (lost connection) so the owning loop restarts."""
        if self._task is not None and self._task.done() and not self._task.cancelled():
            exc = self._task.exception()
            if exc is not None:
                raise exc
            raise RuntimeError(f"LISTEN {self.channel} stopped")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
