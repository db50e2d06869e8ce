"""The outbox relay's NATS JetStream transport (broker.transport = nats).

A round claims the oldest unpublished rows in one transaction (queries.sql
`claim_outbox`), publishes each to its subject (hodei.event_stream.subject_for) with
the event id as its message id, waits for JetStream's acks and marks only the
acknowledged rows, in that transaction. The publishes are pipelined in id order on one
connection, so the stream stores them in that order.

NATS down is not the relay's failure: the round returns 0 and the rows wait; the
relay says so once, tries again with capped exponential backoff and says once that
NATS is back, then drains the backlog. A row JetStream refuses (larger than the
server's max_payload or the stream's max_msg_size) is counted
(publish_attempts, last_error) and, at broker.max_attempts, published to the
dead-letter subject instead and marked dead_at.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import Header

from hodei.broker_settings import BrokerSettings
from hodei.db.connector import Database, Tx
from hodei.errors import first_line
from hodei.event_stream import (
    AGGREGATE_ID,
    EVENT_TYPE,
    MSG_ID,
    OUTBOX_ID,
    UNREACHABLE,
    NatsUnavailable,
    connect,
    ensure_stream,
    subject_for,
)

logger = logging.getLogger(__name__)

#: Reconnection backoff: 0.2 s doubling to 5 s (with jitter), so that a backlog starts
#: draining within ~5 s of NATS coming back.
_BACKOFF_INITIAL = 0.2
_BACKOFF_MAX = 5.0


class _Acks:
    """Pipelined JetStream publishes: each message goes out on the connection in call
    order with its own reply subject, and a future per message takes JetStream's
    answer. (nats-py's publish_async never resolves the future of a refused message:
    its reply handler raises the API error instead of setting it; found with a
    too-large message in nats-py 2.16.)"""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.prefix = nc.new_inbox()
        self.futures: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def open(self) -> None:
        await self.nc.subscribe(f"{self.prefix}.*", cb=self._on_reply)

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> asyncio.Future[dict[str, Any]]:
        token = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.futures[token] = future
        future.add_done_callback(lambda _: self.futures.pop(token, None))
        await self.nc.publish(subject, payload, reply=f"{self.prefix}.{token}", headers=headers)
        return future

    async def _on_reply(self, msg: Msg) -> None:
        future = self.futures.get(msg.subject.rpartition(".")[2])
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get(Header.STATUS) == "503":
            future.set_exception(nats.js.errors.NoStreamResponseError())
            return
        try:
            answer = json.loads(msg.data)
        except ValueError as exc:
            future.set_exception(exc)
            return
        if "error" in answer:
            try:
                # nats-py raises the typed error (BadRequestError...) rather than return it.
                raised = nats.js.errors.APIError.from_error(answer["error"])
            except nats.js.errors.APIError as exc:
                raised = exc
            future.set_exception(raised)
            return
        future.set_result(answer)


@dataclass
class _Round:
    acked: list[int] = field(default_factory=list)
    #: (row, reason) of the rows JetStream refused.
    refused: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    #: Why the round stopped because NATS could not be reached ("" when it did not).
    unreachable: str = ""


class NatsTransport:
    def __init__(self, settings: BrokerSettings, db: Database, server_id: str) -> None:
        self.settings = settings
        self.db = db
        self.server_id = server_id
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._acks: _Acks | None = None
        self._down = False
        self._failures = 0
        self._retry_at = 0.0
        self.dead_lettered_total = 0

    def describe(self) -> str:
        return f"NATS JetStream stream {self.settings.stream!r} at {self.settings.nats_url}"

    async def start(self) -> None:
        await self._ready()

    async def close(self) -> None:
        await self._drop()

    async def publish(self, limit: int, record_status: bool) -> int:
        js = await self._ready()
        if js is None:
            return 0
        async with self.db.transaction() as tx:
            rows = await tx.all("claim_outbox", {"limit": limit})
            if not rows:
                return 0
            assert self._acks is not None
            sent = await self._send(self._acks, rows)
            dead = await self._settle_refused(js, tx, sent)
            if sent.acked:
                await tx.execute("mark_outbox_published", {"ids": sent.acked})
            if (sent.acked or dead) and record_status:
                await tx.execute("record_outbox_publish", {"server_id": self.server_id})
            # Lost in a crash, the marks only make the rows go out again: the stream
            # drops the copies (message id = event id).
            await tx.one("async_commit")
        if sent.unreachable:
            await self._went_down(sent.unreachable)
        return len(sent.acked) + dead

    async def _send(self, acks: _Acks, rows: list[dict[str, Any]]) -> _Round:
        result = _Round()
        waiting: list[tuple[dict[str, Any], asyncio.Future[Any]]] = []
        for row in rows:
            try:
                future = await acks.publish(
                    subject_for(self.settings.subject_prefix, row["topic"]),
                    row["body"].encode(),
                    {**_headers(row), Header.EXPECTED_STREAM: self.settings.stream},
                )
            except nats.errors.MaxPayloadError as exc:
                result.refused.append((row, f"larger than NATS max_payload: {first_line(exc)}"))
                continue
            except UNREACHABLE as exc:
                result.unreachable = _reason(exc)
                break
            waiting.append((row, future))
        if waiting:
            # One deadline for the whole round: NATS gone silent costs ack_timeout once.
            await asyncio.wait([f for _, f in waiting], timeout=self.settings.ack_timeout)
        for row, future in waiting:
            if not future.done():
                future.cancel()
                result.unreachable = result.unreachable or "no ack within broker.ack_timeout"
            elif (failure := future.exception()) is None:
                result.acked.append(row["id"])
            elif isinstance(failure, nats.js.errors.APIError) and not isinstance(
                failure, nats.js.errors.ServiceUnavailableError
            ):
                reason = failure.description or str(failure)
                result.refused.append((row, f"refused by JetStream: {reason}"))
            else:
                result.unreachable = result.unreachable or _reason(failure)
        return result

    async def _settle_refused(self, js: JetStreamContext, tx: Tx, sent: _Round) -> int:
        """Count the refusals; dead-letter the rows at their last attempt. How many
        rows were dead-lettered (they leave the backlog)."""
        if not sent.refused:
            return 0
        again = [
            (r, e)
            for r, e in sent.refused
            if r["publish_attempts"] + 1 < self.settings.max_attempts
        ]
        last = [
            (r, e)
            for r, e in sent.refused
            if r["publish_attempts"] + 1 >= self.settings.max_attempts
        ]
        for row, error in sent.refused:
            logger.warning(
                "JetStream refused outbox row %s (publication %s of %s): %s",
                row["id"],
                row["publish_attempts"] + 1,
                self.settings.max_attempts,
                error,
                extra={"outbox_id": row["id"], "event_id": row["event_id"], "topic": row["topic"]},
            )
        if again:
            await tx.execute(
                "mark_outbox_refused",
                {"ids": [r["id"] for r, _ in again], "errors": [e for _, e in again]},
            )
        dead: list[tuple[dict[str, Any], str]] = []
        for row, error in last:
            try:
                await js.publish(
                    self.settings.dead_subject,
                    _dead_letter(row, error, self.settings.subject_prefix),
                    timeout=self.settings.ack_timeout,
                    stream=self.settings.stream,
                    headers={MSG_ID: f"{row['event_id']}.dead", OUTBOX_ID: str(row["id"])},
                )
            except Exception as exc:
                sent.unreachable = sent.unreachable or _reason(exc)
                continue
            dead.append((row, error))
            logger.error(
                "outbox row %s dead-lettered to %s after %s attempts: %s",
                row["id"],
                self.settings.dead_subject,
                row["publish_attempts"] + 1,
                error,
                extra={"outbox_id": row["id"], "event_id": row["event_id"], "topic": row["topic"]},
            )
        if dead:
            await tx.execute(
                "mark_outbox_dead",
                {"ids": [r["id"] for r, _ in dead], "errors": [e for _, e in dead]},
            )
            self.dead_lettered_total += len(dead)
        return len(dead)

    async def _ready(self) -> JetStreamContext | None:
        """The JetStream context, (re)connecting when the backoff allows; None while
        NATS cannot be reached."""
        if self._nc is not None and self._nc.is_connected and self._js is not None:
            if self._down:
                self._back()  # nats-py reconnected by itself
            return self._js
        if self._nc is not None and self._nc.is_reconnecting:
            self._note_down("connection lost, reconnecting")
            return None  # nats-py rides out a short outage itself, then closes
        await self._drop()
        if time.monotonic() < self._retry_at:
            return None
        try:
            nc = await connect(self.settings, wait=self.settings.ack_timeout, reconnect=True)
        except NatsUnavailable as exc:
            await self._went_down(str(exc))
            return None
        js = nc.jetstream(timeout=self.settings.ack_timeout)
        acks = _Acks(nc)
        try:
            await ensure_stream(js, self.settings)
            await acks.open()
        except (*UNREACHABLE, nats.js.errors.APIError) as exc:
            await nc.close()
            await self._went_down(f"stream {self.settings.stream}: {_reason(exc)}")
            return None
        self._nc, self._js, self._acks = nc, js, acks
        if self._down:
            self._back()
        else:
            logger.info("connected to NATS at %s", self.settings.nats_url)
        return js

    def _note_down(self, reason: str) -> None:
        if not self._down:
            # Once per outage, not once per row or per retry.
            logger.warning(
                "NATS unreachable (%s): outbox rows wait unpublished; retrying with backoff",
                reason,
                extra={"nats_url": self.settings.nats_url},
            )
        self._down = True

    def _back(self) -> None:
        logger.info(
            "NATS reachable again at %s: publishing the outbox backlog",
            self.settings.nats_url,
            extra={"nats_url": self.settings.nats_url, "failures": self._failures},
        )
        self._down, self._failures = False, 0

    async def _went_down(self, reason: str) -> None:
        self._note_down(reason)
        self._failures += 1
        delay = min(_BACKOFF_MAX, _BACKOFF_INITIAL * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + delay * random.uniform(0.8, 1.0)
        await self._drop()

    async def _drop(self) -> None:
        nc, self._nc, self._js, self._acks = self._nc, None, None, None
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.close(), timeout=2.0)
            except Exception as exc:
                logger.debug("closing the NATS connection: %s", first_line(exc))


def _headers(row: dict[str, Any]) -> dict[str, str]:
    return {
        MSG_ID: str(row["event_id"]),
        OUTBOX_ID: str(row["id"]),
        EVENT_TYPE: str(row["event_type"] or ""),
        AGGREGATE_ID: str(row["aggregate_id"]),
    }


def _dead_letter(row: dict[str, Any], error: str, prefix: str) -> bytes:
    # Without the event itself: it is what could not be published (too large).
    return json.dumps(
        {
            "outbox_id": row["id"],
            "event_id": row["event_id"],
            "topic": row["topic"],
            "subject": subject_for(prefix, row["topic"]),
            "aggregate_id": str(row["aggregate_id"]),
            "attempts": row["publish_attempts"] + 1,
            "error": error,
        }
    ).encode()


def _reason(exc: BaseException) -> str:
    return first_line(exc) or type(exc).__name__
