"""This server's row in `server_status`: what its loops last did, readable by a
diagnostic that sees only the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import hodei
from hodei.db.connector import Database


class ServerStatus:
    def __init__(self, db: Database, server_id: str, clock_offset_s: float = 0.0) -> None:
        self.db = db
        self.server_id = server_id
        #: Added to this host's clock as reported (a testing-only fault; 0 otherwise).
        self.clock_offset = timedelta(seconds=clock_offset_s)

    async def started(self, dispatcher_enabled: bool, outbox_relay_enabled: bool) -> None:
        async with self.db.connection() as tx:
            await tx.execute(
                "upsert_server_status",
                {
                    "server_id": self.server_id,
                    "version": hodei.__version__,
                    "dispatcher_enabled": dispatcher_enabled,
                    "outbox_relay_enabled": outbox_relay_enabled,
                },
            )

    # The periodic writes below are diagnostics: a crash that loses the last of them
    # only makes the row look a moment older, so their commits do not wait for a WAL
    # flush (the dispatcher wrote one after its cycles, in its wake-up path).

    async def heartbeat(self) -> None:
        async with self.db.transaction() as tx:
            await tx.one("async_commit")
            host_now = datetime.now(UTC) + self.clock_offset
            await tx.execute(
                "server_heartbeat", {"server_id": self.server_id, "host_now": host_now}
            )

    async def dispatch_cycles(self, cycles: int, dispatched: int) -> None:
        async with self.db.transaction() as tx:
            await tx.one("async_commit")
            await tx.execute(
                "record_dispatch_cycle",
                {"server_id": self.server_id, "cycles": cycles, "dispatched": dispatched},
            )

    async def listening(self, address: str) -> None:
        async with self.db.connection() as tx:
            await tx.execute("server_listening", {"server_id": self.server_id, "address": address})

    async def dispatcher_failed(self, error: str) -> None:
        async with self.db.connection() as tx:
            await tx.execute("dispatcher_failed", {"server_id": self.server_id, "error": error})

    async def stopped(self) -> None:
        async with self.db.connection() as tx:
            await tx.execute("server_stopped", {"server_id": self.server_id})

    async def read(self) -> dict[str, Any]:
        async with self.db.connection() as tx:
            row = await tx.one("get_server_status", {"server_id": self.server_id})
            workers = await tx.one("connected_worker_count", {"server_id": self.server_id})
            version = await tx.one("schema_version")
        assert row is not None and workers is not None and version is not None
        return row | {"connected_workers": workers["n"], "schema_version": version["version"]}
