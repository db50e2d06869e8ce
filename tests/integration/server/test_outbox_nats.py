"""The outbox relay on NATS JetStream (broker.transport = nats): order, one message
per event id (a republish deduplicated), an outage that backs the outbox up and then
drains, and the dead-letter subject. Real NATS: the machine's shared one with a
stream of the test's own, or a nats-server started by the test for what stops it."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js.api import StorageType, StreamConfig

from harness.nats_server import NatsServer
from harness.waits import wait_for_async, wait_until_async
from hodei.api.v1 import jobs_pb2
from tests.integration.nats_events import (
    add_stream,
    outbox,
    stored,
    unique_broker,
    unpublished,
)
from tests.integration.wire import Stubs

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[Any]]


async def _all_published(db_url: str, seconds: float = 15.0) -> None:
    await wait_until_async(
        "every outbox row to be published", lambda: unpublished(db_url) == 0, seconds
    )


def _assert_once_each_in_order(rows: list[dict[str, Any]], messages: list[Any]) -> None:
    counts = Counter(m.msg_id for m in messages)
    assert [k for k, n in counts.items() if n > 1] == [], "a message id stored twice"
    assert [m.msg_id for m in messages] == [str(r["event_id"]) for r in rows]


async def test_events_arrive_in_order_once_per_event_id(
    shared_nats: dict[str, Any],
    start_server: StartServer,
    stubs_for: Callable[[str], Stubs],
    db_url: str,
) -> None:
    app = await start_server(dispatcher={"enabled": False}, broker=shared_nats)
    stubs = stubs_for(app.address)
    for _ in range(10):
        job = await stubs.queue(["true"])
        await stubs.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id))
    await _all_published(db_url)
    rows = outbox(db_url)
    messages = await stored(shared_nats["nats_url"], shared_nats["stream"])
    assert len(rows) == 20
    _assert_once_each_in_order(rows, messages)
    prefix = shared_nats["subject_prefix"]
    assert [m.subject for m in messages[:2]] == [f"{prefix}.job.created", f"{prefix}.job.cancelled"]
    body = json.loads(messages[0].data)
    assert body["outbox_id"] == rows[0]["id"] and body["topic"] == "job.JobCreated"
    assert body["event"]["event_type"] == "JobCreated"

    # A relay killed between JetStream's ack and its commit: the rows are unpublished
    # again (from outside) and go out again; the stream drops every copy.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE outbox_events SET published_at = NULL")
        conn.execute("NOTIFY hodei_outbox_wake")
    await _all_published(db_url)
    again = await stored(shared_nats["nats_url"], shared_nats["stream"])
    assert again == messages
    assert app.outbox.published_total == 40  # each row went out twice, stored once


async def test_a_nats_outage_backs_the_outbox_up_then_it_drains(
    own_nats: NatsServer,
    start_server: StartServer,
    stubs_for: Callable[[str], Stubs],
    db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = unique_broker(own_nats.url)
    app = await start_server(dispatcher={"enabled": False}, broker=broker)
    stubs = stubs_for(app.address)
    for _ in range(5):
        await stubs.queue(["true"])
    await _all_published(db_url)

    caplog.set_level(logging.INFO, logger="hodei.server.outbox_nats")
    own_nats.kill()
    for _ in range(30):
        await stubs.queue(["true"])  # the server keeps serving
    health = health_pb2_grpc.HealthStub(stubs.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    await asyncio.sleep(3.0)  # several relay rounds and reconnection attempts
    assert unpublished(db_url) == 30
    down = [r for r in caplog.records if r.getMessage().startswith("NATS unreachable")]
    assert len(down) == 1, [r.getMessage() for r in down]  # once, not once per row or retry

    own_nats.start()  # same port, same store: the stream and its messages are back
    await _all_published(db_url, seconds=20)
    rows = outbox(db_url)
    messages = await stored(own_nats.url, broker["stream"])
    assert len(rows) == 35
    _assert_once_each_in_order(rows, messages)  # nothing lost, nothing duplicated
    assert any(r.getMessage().startswith("NATS reachable again") for r in caplog.records)


async def test_a_row_jetstream_keeps_refusing_goes_to_the_dead_letter_subject(
    shared_nats: dict[str, Any],
    start_server: StartServer,
    stubs_for: Callable[[str], Stubs],
    db_url: str,
) -> None:
    # The stream exists with a 2 KiB message limit; the relay keeps it (it only
    # brings subjects and duplicate window to its settings).
    prefix, stream = shared_nats["subject_prefix"], shared_nats["stream"]
    await add_stream(
        shared_nats["nats_url"],
        StreamConfig(
            name=stream,
            subjects=[f"{prefix}.>"],
            storage=StorageType.MEMORY,
            max_msg_size=2048,
            duplicate_window=120,
        ),
    )
    app = await start_server(
        dispatcher={"enabled": False}, broker={**shared_nats, "max_attempts": 3}
    )
    stubs = stubs_for(app.address)
    await stubs.queue(["true"])
    with psycopg.connect(db_url, autocommit=True) as conn:
        big = conn.execute(
            "WITH e AS (INSERT INTO domain_events (event_type, aggregate_type, aggregate_id, "
            "payload) VALUES ('JobCreated', 'job', %s, jsonb_build_object('big', repeat('x', "
            "5000))) RETURNING *) INSERT INTO outbox_events (event_id, topic, aggregate_id, "
            "payload) SELECT id, 'job.JobCreated', aggregate_id, payload FROM e "
            "RETURNING id, event_id",
            (str(uuid.uuid4()),),
        ).fetchone()
        conn.execute("NOTIFY hodei_outbox_wake")
    assert big is not None
    await stubs.queue(["true"])  # after the big row: not held up by it
    await _all_published(db_url)

    rows = {r["id"]: r for r in outbox(db_url)}
    dead = rows[big[0]]
    assert dead["dead_at"] is not None and dead["publish_attempts"] == 3
    assert "maximum" in dead["last_error"] or "size" in dead["last_error"]
    assert [r["id"] for r in rows.values() if r["dead_at"]] == [big[0]]

    messages = await stored(shared_nats["nats_url"], stream)
    letters = [m for m in messages if m.subject == f"{prefix}.dead"]
    assert len(letters) == 1
    letter = json.loads(letters[0].data)
    assert (letter["outbox_id"], letter["event_id"], letter["attempts"]) == (big[0], big[1], 3)
    assert letter["subject"] == f"{prefix}.job.created"
    others = [m.msg_id for m in messages if m.subject != f"{prefix}.dead"]
    assert others == [str(r["event_id"]) for r in rows.values() if not r["dead_at"]]


async def test_the_relay_waits_for_nats_that_is_not_there_at_start(
    own_nats: NatsServer,
    start_server: StartServer,
    stubs_for: Callable[[str], Stubs],
    db_url: str,
) -> None:
    own_nats.kill()
    broker = unique_broker(own_nats.url)
    app = await start_server(dispatcher={"enabled": False}, broker=broker)
    stubs = stubs_for(app.address)
    await stubs.queue(["true"])
    await asyncio.sleep(1.0)
    assert unpublished(db_url) == 1
    assert app.supervisor.restarts["outbox-relay"] == 0  # waiting is not crashing
    own_nats.start()
    await _all_published(db_url)
    messages = await wait_for_async(
        "the event on the stream",
        lambda: stored(own_nats.url, broker["stream"]),
        lambda m: len(m) == 1,
        5,
    )
    assert messages[0].msg_id == str(outbox(db_url)[0]["event_id"])
