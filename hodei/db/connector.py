"""A small connector over psycopg's async pool, with queries referred to by name.

Queries live in `queries.sql` as `-- name: <name>` blocks (procrastinate style).
Service code runs each state change inside `async with db.transaction() as tx:`
and calls `tx.one("lock_job", {...})`, or, for the hot transitions, runs one guarded
statement that is its own transaction (`db.connection()`); nothing outside this
package builds SQL strings. A `-- fragment: <name>` block is text that queries
include as `{{name}}` (the outbox rows every event-writing statement adds).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import cache
from importlib import resources
from typing import Any, Protocol

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from hodei.errors import Unavailable

#: What a lost or unreachable database raises: a refused connection, a connection cut
#: mid-statement (AdminShutdown on a restart), no pooled connection in time.
DATABASE_DOWN = (psycopg.OperationalError, PoolTimeout)

Row = dict[str, Any]
Params = dict[str, Any] | Sequence[Any] | None

#: What each connection of a server does, as shown in pg_stat_activity.application_name
#: (`hodei-<server id>-<role>`): a diagnosis that finds a session waiting on a lock, or
#: holding one, can say whose it is. Each role has a pool of its own; the API's is the
#: main one (DB_ROLES[0]), the others are small.
DB_ROLES = ("api", "worker-stream", "dispatcher", "relay", "recovery")
#: The role of the connections the current task takes; a loop sets its own at start
#: (asyncio copies the context into each task, gRPC runs each call in a task of its own).
_ROLE: ContextVar[str] = ContextVar("hodei_db_role", default=DB_ROLES[0])
#: PostgreSQL keeps NAMEDATALEN - 1 bytes of an application_name.
_APP_NAME_MAX = 63


def use_role(role: str) -> None:
    """Connections taken from now on by this task (and tasks it starts) are `role`'s."""
    _ROLE.set(role)


def application_name(server_id: str, role: str) -> str:
    """`hodei-<server id>-<role>`, cut to what PostgreSQL keeps; the role survives the cut."""
    suffix = f"-{role}"
    return f"hodei-{server_id}"[: _APP_NAME_MAX - len(suffix)] + suffix


def with_application_name(url: str, name: str) -> str:
    """`url` (URL or key=value conninfo) with its application_name set to `name`."""
    return make_conninfo(url, application_name=name)


_NAME_RE = re.compile(r"^--\s*(name|fragment):\s*([a-z0-9_]+)\s*$", re.MULTILINE)
_INCLUDE_RE = re.compile(r"\{\{\s*([a-z0-9_]+)\s*\}\}")


def parse_queries(text: str) -> dict[str, str]:
    """Split a `.sql` file into {name: sql} on `-- name: x` markers, with each
    `{{f}}` replaced by the `-- fragment: f` block of that name (itself expanded)."""
    parts = _NAME_RE.split(text)
    blocks: dict[str, dict[str, str]] = {"name": {}, "fragment": {}}
    for kind, name, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        if name in blocks["name"] or name in blocks["fragment"]:
            raise ValueError(f"query {name!r} is defined twice")
        blocks[kind][name] = body.strip().rstrip(";")
    fragments = blocks["fragment"]

    def include(match: re.Match[str], seen: tuple[str, ...] = ()) -> str:
        name = match.group(1)
        if name in seen:
            raise ValueError(f"fragment {name!r} includes itself")
        try:
            fragment = fragments[name]
        except KeyError:
            raise ValueError(f"no fragment named {name!r}") from None
        # A fragment may include others (queue_job's body, the retention statements' guards).
        return _INCLUDE_RE.sub(lambda inner: include(inner, (*seen, name)), fragment)

    return {name: _INCLUDE_RE.sub(include, body) for name, body in blocks["name"].items()}


@cache
def queries() -> dict[str, str]:
    return parse_queries(resources.files("hodei.db").joinpath("queries.sql").read_text("utf-8"))


def query(name: str) -> str:
    try:
        return queries()[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in queries.sql") from None


class Tx(Protocol):
    """What services see of a transaction."""

    async def one(self, name: str, params: Params = None) -> Row | None: ...

    async def all(self, name: str, params: Params = None) -> list[Row]: ...

    async def execute(self, name: str, params: Params = None) -> int: ...

    async def copy_data(self, name: str, pieces: Iterable[bytes]) -> None: ...


class PsycopgTx:
    """A transaction on one pooled connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        self.conn = conn

    async def one(self, name: str, params: Params = None) -> Row | None:
        cur = await self.conn.execute(query(name), params, prepare=True)
        return await cur.fetchone()

    async def all(self, name: str, params: Params = None) -> list[Row]:
        cur = await self.conn.execute(query(name), params, prepare=True)
        return await cur.fetchall()

    async def execute(self, name: str, params: Params = None) -> int:
        cur = await self.conn.execute(query(name), params, prepare=True)
        return cur.rowcount

    async def copy_data(self, name: str, pieces: Iterable[bytes]) -> None:
        """Run a `COPY ... FROM STDIN` query with a payload in the query's format (for
        binary COPY: hodei.db.copy_format), written piece by piece as `pieces` yields."""
        async with self.conn.cursor() as cur, cur.copy(query(name)) as copy:
            for piece in pieces:
                await copy.write(piece)


_Pool = AsyncConnectionPool[psycopg.AsyncConnection[Row]]
#: Connections of the small pools (every role but the API's).
_SIDE_POOL_MAX = 2


class Database:
    """The server's connection pools, one per role (DB_ROLES) when a server id is given,
    else one. `open()` before use, `close()` at shutdown."""

    def __init__(
        self, url: str, min_size: int = 2, max_size: int = 10, server_id: str | None = None
    ) -> None:
        self.url = url
        self.pools: dict[str, _Pool] = {}
        for role in DB_ROLES if server_id is not None else DB_ROLES[:1]:
            main = role == DB_ROLES[0]
            # The worker streams store results and logs: as busy as the API.
            busy = main or role == "worker-stream"
            kwargs: dict[str, Any] = {"row_factory": dict_row, "autocommit": True}
            if server_id is not None:
                kwargs["application_name"] = application_name(server_id, role)
            self.pools[role] = AsyncConnectionPool(
                url,
                min_size=min_size if main else 1,
                max_size=max_size if busy else min(max_size, _SIDE_POOL_MAX),
                open=False,
                kwargs=kwargs,
                name=f"hodei-{role}",
                # The loops' small pools check a connection as they hand it out: one of
                # them could still hold a connection the database killed in an outage
                # after `check()` swept it (CI saw the relay fail once more after "back").
                # A round trip per checkout is cheap there; the two busy pools rely on
                # the database watch's sweep instead, keeping their hot path lean.
                check=None if busy else AsyncConnectionPool.check_connection,
            )
        self.pool = self.pools[DB_ROLES[0]]

    async def open(self, wait_seconds: float = 15.0) -> None:
        try:
            # Each filled before use (a pool still connecting in the background is not
            # cancelled cleanly when start-up fails later: the process hung on exit).
            for pool in self.pools.values():
                await pool.open(wait=True, timeout=wait_seconds)
        except Exception as exc:
            raise Unavailable(f"cannot connect to the database: {exc}") from exc

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()

    async def check(self) -> None:
        """Replace the idle connections a database outage broke, in every pool: each
        role's pool would otherwise hand its next caller a dead connection (only the
        API's is pinged by the database watch)."""
        for pool in self.pools.values():
            await pool.check()

    def _pool(self) -> _Pool:
        return self.pools.get(_ROLE.get(), self.pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PsycopgTx]:
        """One transaction: committed on normal exit, rolled back on any exception."""
        async with self._pool().connection() as conn, conn.transaction():
            yield PsycopgTx(conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[PsycopgTx]:
        """Autocommit statements (reads that need no snapshot across statements)."""
        async with self._pool().connection() as conn:
            yield PsycopgTx(conn)
