"""Tokens for tests that run a server with authentication on (`auth={"mode":
"required"}`): made straight in the test's database, as `hodei token create` does."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from hodei.db.connector import PsycopgTx
from hodei.domain.auth import Role
from hodei.server.tokens import create_token, revoke_token


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
