"""API tokens in PostgreSQL: create, list, revoke (`hodei token`, `hodei up`), and the
server's check of the token on each call, cached for a few seconds.

The cache keeps the hot path (a submission costs ~3 ms) free of a query per call: a
token checked less than `auth.cache_seconds` ago is trusted again after comparing its
secret's hash, so a revocation takes effect within that many seconds. `last_used_at`
is written at most once a minute per token, on a cache miss.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from hodei.db.connector import Database, Tx
from hodei.domain.auth import (
    Caller,
    Role,
    check_name,
    format_token,
    hash_secret,
    new_secret,
    parse_token,
    secret_matches,
)
from hodei.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated

logger = logging.getLogger(__name__)

_TOUCH_EVERY = timedelta(minutes=1)
#: Most tokens kept in the cache; beyond it the oldest entry goes.
_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never its secret."""

    id: uuid.UUID
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    now: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TokenInfo:
        return cls(
            id=row["id"],
            name=row["name"],
            role=Role(row["role"]),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
            last_used_at=row["last_used_at"],
            now=row.get("now"),
        )

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.now is not None and self.expires_at <= self.now:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": str(self.id),
            "name": self.name,
            "role": str(self.role),
            "status": self.status,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "last_used_at": iso(self.last_used_at),
        }


async def create_token(
    tx: Tx,
    name: str,
    role: Role,
    expires_in: float | None = None,
    max_registrations: int | None = None,
    register_within: float | None = None,
) -> tuple[TokenInfo, str]:
    """A new token: its listing and its text, which exists only in this answer.
    `max_registrations`: how many workers it may register (None: any number);
    `register_within`: seconds from now during which it may register them (None: any
    time). The scaler's tokens for provisioned workers: 1, within a few minutes."""
    token_id = uuid.uuid4()
    secret = new_secret()
    try:
        row = await tx.one(
            "insert_token",
            {
                "id": token_id,
                "name": check_name(name),
                "role": str(role),
                "secret_hash": hash_secret(secret),
                "expires_in": expires_in,
                "max_registrations": max_registrations,
                "register_within": register_within,
            },
        )
    except psycopg.errors.UniqueViolation:
        raise AlreadyExists(f"a token named {name!r} exists; pick another name") from None
    assert row is not None
    logger.info("token created", extra={"token_name": name, "role": str(role)})
    return TokenInfo.from_row(row), format_token(token_id, secret)


async def list_tokens(tx: Tx) -> list[TokenInfo]:
    return [TokenInfo.from_row(r) for r in await tx.all("list_tokens")]


async def revoke_token(tx: Tx, ref: str) -> TokenInfo:
    """Revoke by name or id."""
    ref = ref.strip()
    if not 0 < len(ref) <= 100:
        raise InvalidArgument("a token is named by its name or id (1-100 characters)")
    row = await tx.one("revoke_token", {"ref": ref})
    if row is None:
        raise NotFound(f"no token named {ref!r}")
    logger.info("token revoked", extra={"token_name": row["name"]})
    return TokenInfo.from_row(row)


@dataclass
class _Checked:
    caller: Caller
    secret_hash: bytes
    expires_at: float | None  # time.time() seconds
    checked_at: float  # time.monotonic()


class TokenVerifier:
    """The server's check of a call's token (hodei.server.api.auth)."""

    def __init__(self, db: Database, cache_seconds: float) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._cache: dict[uuid.UUID, _Checked] = {}

    async def refused_among(self, token_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Of these tokens, those now revoked or expired, with the reason a call would
        get; they are dropped from the cache, so a call with them is refused at once."""
        ids = list(token_ids)
        if not ids:
            return {}
        async with self.db.connection() as tx:
            rows = await tx.all("tokens_refused", {"ids": ids})
        refused: dict[uuid.UUID, str] = {}
        for row in rows:
            self._cache.pop(row["id"], None)
            verb = "was revoked" if row["revoked"] else "has expired"
            refused[row["id"]] = f"token {row['name']!r} {verb}"
        return refused

    async def caller(self, token: str) -> Caller:
        """The caller a token stands for, or Unauthenticated with a one-line reason."""
        parsed = parse_token(token)
        hit = self._cache.get(parsed.token_id)
        now = time.monotonic()
        if hit is not None and now - hit.checked_at < self.cache_seconds:
            if not secret_matches(parsed.secret, hit.secret_hash):
                raise Unauthenticated("unknown token")
            if hit.expires_at is not None and hit.expires_at <= time.time():
                raise Unauthenticated(f"token {hit.caller.name!r} has expired")
            return hit.caller
        async with self.db.connection() as tx:
            row = await tx.one("get_token", {"id": parsed.token_id})
            if row is None or not secret_matches(parsed.secret, row["secret_hash"]):
                # The same answer for an unknown id and a wrong secret.
                raise Unauthenticated("unknown token")
            name = row["name"]
            if row["revoked_at"] is not None:
                self._cache.pop(parsed.token_id, None)
                raise Unauthenticated(f"token {name!r} was revoked")
            expires = row["expires_at"]
            if expires is not None and expires <= row["now"]:
                raise Unauthenticated(f"token {name!r} has expired")
            last = row["last_used_at"]
            if last is None or row["now"] - last >= _TOUCH_EVERY:
                await tx.execute("touch_token", {"id": parsed.token_id})
        caller = Caller(Role(row["role"]), parsed.token_id, name)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[parsed.token_id] = _Checked(
            caller,
            bytes(row["secret_hash"]),
            expires.timestamp() if expires is not None else None,
            now,
        )
        return caller
