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
from functools import cache
from importlib import resources
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from hodei.errors import Unavailable

#: What a lost or unreachable database raises: a refused connection, a connection cut
#: mid-statement (AdminShutdown on a restart), no pooled connection in time.
DATABASE_DOWN = (psycopg.OperationalError, PoolTimeout)

Row = dict[str, Any]
Params = dict[str, Any] | Sequence[Any] | None

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


class Database:
    """The server's connection pool. `open()` before use, `close()` at shutdown."""

    def __init__(self, url: str, min_size: int = 2, max_size: int = 10) -> None:
        self.url = url
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]] = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": True},
            name="hodei",
        )

    async def open(self, wait_seconds: float = 15.0) -> None:
        try:
            await self.pool.open(wait=True, timeout=wait_seconds)
        except Exception as exc:
            raise Unavailable(f"cannot connect to the database: {exc}") from exc

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PsycopgTx]:
        """One transaction: committed on normal exit, rolled back on any exception."""
        async with self.pool.connection() as conn, conn.transaction():
            yield PsycopgTx(conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[PsycopgTx]:
        """Autocommit statements (reads that need no snapshot across statements)."""
        async with self.pool.connection() as conn:
            yield PsycopgTx(conn)
