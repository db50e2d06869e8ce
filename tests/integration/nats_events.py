"""Helpers of the tests of the outbox on NATS JetStream: a unique stream and subject
prefix on the machine's shared NATS (never another test's), a nats-server of the test's
own for those that stop it, and readings of what a stream holds.

`HODEI_REQUIRE_NATS=1` turns "NATS is missing" from a skip into a failure (CI)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import nats
import psycopg
import pytest
from nats.js.api import StreamConfig

from harness.nats_server import SHARED_URL, nats_server_binary, reachable


def missing(reason: str) -> None:
    """Skip (or fail under HODEI_REQUIRE_NATS=1) a test whose NATS is not there."""
    if os.environ.get("HODEI_REQUIRE_NATS") == "1":
        pytest.fail(f"{reason} (HODEI_REQUIRE_NATS=1)")
    pytest.skip(reason)


def require_binary() -> str:
    binary = nats_server_binary()
    if binary is None:
        missing("nats-server is not installed (apt-get install nats-server)")
    assert binary is not None
    return binary


def require_shared() -> str:
    if not reachable(SHARED_URL):
        missing(f"no NATS at {SHARED_URL} (start one: nats-server -js -p 4222)")
    return SHARED_URL


def unique_broker(url: str) -> dict[str, Any]:
    """The `broker` settings of a test: its own stream and subject prefix."""
    tag = uuid.uuid4().hex[:10]
    return {
        "transport": "nats",
        "nats_url": url,
        "stream": f"HODEI_TEST_{tag}",
        "subject_prefix": f"hodeitest.{tag}",
        "ack_timeout": 2.0,
    }


async def delete_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url, allow_reconnect=False)
    try:
        await nc.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()


async def add_stream(url: str, config: StreamConfig) -> None:
    nc = await nats.connect(url, allow_reconnect=False)
    try:
        await nc.jetstream().add_stream(config)
    finally:
        await nc.close()


@dataclass(frozen=True)
class Stored:
    seq: int
    subject: str
    msg_id: str
    data: bytes


async def stored(url: str, stream: str) -> list[Stored]:
    """Every message the stream holds, in its order."""
    nc = await nats.connect(url, allow_reconnect=False)
    try:
        js = nc.jetstream()
        state = (await js.stream_info(stream)).state
        out = []
        for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
            msg = await js.get_msg(stream, seq)
            headers = msg.headers or {}
            out.append(
                Stored(seq, msg.subject or "", headers.get("Nats-Msg-Id", ""), msg.data or b"")
            )
        return out
    finally:
        await nc.close()


def outbox(db_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT id, event_id, topic, published_at, dead_at, publish_attempts, last_error "
            "FROM outbox_events ORDER BY id"
        ).fetchall()


def unpublished(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"
        ).fetchone()
    return int(row[0]) if row else 0
