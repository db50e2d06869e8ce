"""Tokens for tests: made straight in the test's database, as `hodei token create` does.

The shared `start_server` fixture runs its servers with authentication on and makes an
admin and a worker token for each, kept here by the server's address: the test helpers
(`Stubs`, `spawn_worker`, the CLI runners, `server_token`) pick them up from the address
they are given, so a test only names a token when it tests authentication itself."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from hodei.db.connector import PsycopgTx
from hodei.domain.auth import Role
from hodei.server.tokens import create_token, revoke_token

#: The tokens of the servers `start_server` started in this process: address -> role -> token.
SERVER_TOKENS: dict[str, dict[str, str]] = {}


def server_token(address: str, role: str = "admin") -> str:
    """The `role` token of the in-process server at `address` ("" if it has none: a
    server with authentication off, or one the fixture did not start)."""
    return SERVER_TOKENS.get(address, {}).get(role, "")


async def make_token(db_url: str, name: str, role: str, expires_in: float | None = None) -> str:
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        _, token = await create_token(PsycopgTx(conn), name, Role(role), expires_in)
    return token


async def revoke(db_url: str, name: str) -> None:
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        await revoke_token(PsycopgTx(conn), name)


def expire(db_url: str, name: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = %s",
            (name,),
        )
