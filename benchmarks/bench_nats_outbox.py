"""The outbox on NATS JetStream: a script that prints figures (not a test).

    .venv/bin/python benchmarks/bench_nats_outbox.py [--events 10000] [--outage 30]
                                                      [--rate 20] [--skip-outage]

On the embedded PostgreSQL (a fresh data dir) and a nats-server -js of its own (a free
port, a temporary store; /usr/sbin/nats-server):

1. publish rate: --events outbox rows (domain events with a realistic payload) are
   written at once, then published by the relay's transport alone, in its rounds of
   2,000: first as NOTIFY (the embedded default), then to JetStream (ack awaited for
   every message before published_at is stamped). Events per second for each.
2. drain after an outage, with jobs flowing: a real server process
   (HODEI_OUTBOX_TRANSPORT=nats) and a real worker (8 slots) run `true` jobs submitted
   at --rate jobs/s; NATS is SIGKILLed for --outage seconds and started again on the
   same port and store. Printed: the backlog when NATS came back, the time until every
   row written before that moment is published (the drain), and a final tally of the
   stream against the outbox (nothing lost, nothing stored twice).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from bench_platform_processes import Platform

from harness.nats_server import NatsServer, nats_server_binary
from hodei.broker_settings import BrokerSettings
from hodei.client import HodeiClient
from hodei.db.connector import Database
from hodei.db.databases import ensure_database
from hodei.db.migrate import migrate
from hodei.server.outbox import BATCH, NotifyTransport
from hodei.server.outbox_nats import NatsTransport
from hodei.settings import load_settings

#: One event as the platform writes it (JobSucceeded with its payload): ~330 bytes.
_FILL = """
WITH ev AS (
    INSERT INTO domain_events (event_type, aggregate_type, aggregate_id, actor,
                               correlation_id, payload)
    SELECT 'JobSucceeded', 'job', gen_random_uuid(), 'worker:bench-1',
           md5(g::text), jsonb_build_object('state', 'SUCCEEDED', 'attempt', 1,
               'exit_code', 0, 'worker_id', gen_random_uuid(), 'duration_ms', g %% 997)
    FROM generate_series(1, %(n)s) g
    RETURNING *
)
INSERT INTO outbox_events (event_id, topic, aggregate_id, payload)
SELECT id, aggregate_type || '.' || event_type, aggregate_id,
       jsonb_build_object('event_id', id, 'event_type', event_type,
                          'aggregate_type', aggregate_type, 'aggregate_id', aggregate_id,
                          'actor', actor, 'correlation_id', correlation_id,
                          'occurred_at', occurred_at, 'payload', payload)
FROM ev ORDER BY id
"""


async def _drain(transport: NotifyTransport | NatsTransport) -> int:
    published = 0
    while (n := await transport.publish(BATCH, False)) > 0:
        published += n
    return published


async def bench_publish_rate(url: str, events: int, nats: NatsServer) -> None:
    await migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_FILL, {"n": events})
    size = _one(url, "SELECT avg(octet_length(payload::text)) FROM outbox_events")
    print(f"\n1. publish rate: {events:,} outbox rows, ~{float(size[0]):.0f} bytes of event each")
    db = Database(url)
    await db.open()
    try:
        notify = NotifyTransport(load_settings(), db, "bench")
        began = time.perf_counter()
        done = await _drain(notify)
        took = time.perf_counter() - began
        print(f"   notify: {done:,} events in {took:6.2f} s = {done / took:9,.0f} events/s")

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE outbox_events SET published_at = NULL")
            conn.execute("VACUUM ANALYZE outbox_events")
        broker = BrokerSettings(
            transport="nats", nats_url=nats.url, stream="BENCH", subject_prefix="bench.events"
        )
        js = NatsTransport(broker, db, "bench")
        await js.start()
        began = time.perf_counter()
        done = await _drain(js)
        took = time.perf_counter() - began
        await js.close()
        print(
            f"   nats:   {done:,} events in {took:6.2f} s = {done / took:9,.0f} events/s "
            "(each acknowledged by JetStream, file storage, before published_at)"
        )
        stored = await _stream_messages(nats.url, "BENCH")
        print(f"   stream BENCH holds {stored:,} messages for {events:,} rows")
    finally:
        await db.close()


async def _stream_messages(url: str, stream: str) -> int:
    import nats

    nc = await nats.connect(url, allow_reconnect=False)
    try:
        return int((await nc.jetstream().stream_info(stream)).state.messages)
    finally:
        await nc.close()


def _one(url: str, sql: str, params: tuple[object, ...] = ()) -> tuple[Any, ...]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, params or None).fetchone()
    assert row is not None
    return row


def _unpublished(url: str, before: object = None) -> int:
    if before is None:
        return int(_one(url, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL")[0])
    return int(
        _one(
            url,
            "SELECT count(*) FROM outbox_events WHERE published_at IS NULL AND created_at <= %s",
            (before,),
        )[0]
    )


async def _submit(client: HodeiClient, rate: float, stop: asyncio.Event, count: list[int]) -> None:
    gap = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        await client.queue_job(["true"], labels={"bench": "nats-outage"})
        count[0] += 1
        next_at += gap
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def _until(what: str, probe: object, seconds: float) -> float:
    """Seconds until probe() is true (polled every 50 ms); SystemExit past `seconds`."""
    began = time.monotonic()
    while not await asyncio.to_thread(probe):  # type: ignore[arg-type]
        if time.monotonic() - began > seconds:
            raise SystemExit(f"gave up after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - began


async def bench_outage(
    platform: Platform, url: str, nats: NatsServer, outage: float, rate: float
) -> None:
    print(f"\n2. drain after a {outage:.0f} s NATS outage, `true` jobs submitted at {rate:g}/s")
    async with HodeiClient(platform.address, deadline=30, token=platform.token) as client:
        await platform.wait_ready(client)
        stop = asyncio.Event()
        count = [0]
        submitter = asyncio.create_task(_submit(client, rate, stop, count))
        await asyncio.sleep(5)  # steady state
        steady = _unpublished(url)
        nats.kill()
        killed_at, submitted_before = time.monotonic(), count[0]
        await asyncio.sleep(outage)
        backlog = _unpublished(url)
        restart_db_time = _one(url, "SELECT clock_timestamp()")[0]
        nats.start()
        drain = await _until(
            "the rows written before NATS came back",
            lambda: _unpublished(url, restart_db_time) == 0,
            300,
        )
        print(
            f"   steady backlog {steady} row(s); {count[0] - submitted_before} jobs submitted "
            f"during the {time.monotonic() - killed_at - drain:.1f} s outage"
        )
        print(f"   backlog when NATS came back: {backlog:,} outbox rows")
        print(
            f"   drain: every one of them published {drain:5.2f} s after NATS restarted "
            f"({backlog / drain if drain else 0:,.0f} rows/s while jobs kept flowing)"
        )
        await asyncio.sleep(5)
        stop.set()
        await submitter
        await asyncio.sleep(3)  # the last jobs finish and write their events
        await _until("the whole outbox published", lambda: _unpublished(url) == 0, 120)
        with psycopg.connect(url, autocommit=True) as conn:
            rows = [
                str(r[0])
                for r in conn.execute(
                    "SELECT event_id FROM outbox_events WHERE dead_at IS NULL ORDER BY id"
                )
            ]
        ids = await _stream_ids(nats.url, "HODEI")
        lost = len(set(rows) - set(ids))
        twice = len(ids) - len(set(ids))
        in_order = ids == rows
        print(
            f"   after {count[0]} jobs: {len(rows):,} outbox rows, {len(ids):,} messages on the "
            f"stream: {lost} lost, {twice} stored twice, "
            f"{'in outbox order' if in_order else 'NOT in outbox order'}"
        )


async def _stream_ids(url: str, stream: str) -> list[str]:
    """The Nats-Msg-Id of every message of the stream, in its order."""
    import nats

    nc = await nats.connect(url, allow_reconnect=False)
    try:
        js = nc.jetstream()
        state = (await js.stream_info(stream)).state
        out = []
        for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
            msg = await js.get_msg(stream, seq)
            out.append((msg.headers or {}).get("Nats-Msg-Id", ""))
        return out
    finally:
        await nc.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=20.0, help="jobs submitted per second")
    parser.add_argument("--skip-outage", action="store_true")
    args = parser.parse_args()
    if nats_server_binary() is None:
        print("nats-server not found (apt-get install nats-server)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="hodei-bench-nats-"))
    nats = NatsServer(workdir / "nats").start()
    platform = Platform(
        workdir,
        workers=1,
        slots=8,
        server_env={
            "HODEI_OUTBOX_TRANSPORT": "nats",
            "HODEI_NATS_URL": nats.url,
            "HODEI_METRICS": "false",
        },
        worker_env={"HODEI_METRICS": "false"},
    )
    print(f"nats-server at {nats.url}, store {nats.store}; {os.cpu_count()} CPUs")
    try:
        platform.start()
        admin = platform.pg.get_uri()
        ensure_database(admin, "bench_outbox")
        asyncio.run(bench_publish_rate(platform.pg.get_uri("bench_outbox"), args.events, nats))
        if not args.skip_outage:
            asyncio.run(
                bench_outage(platform, platform.pg.get_uri("hodei"), nats, args.outage, args.rate)
            )
    finally:
        platform.stop()
        nats.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
