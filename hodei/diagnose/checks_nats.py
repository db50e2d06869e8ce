"""Checks of the events on NATS JetStream (broker.transport = nats): NATS reachable,
the events stream there, no outbox row dead-lettered, and a durable consumer keeping
up (`--nats-consumer`). The NATS checks are skipped without a NATS URL (`--nats-url`
or HODEI_NATS_URL); the dead letters are read from the database.

NATS is read once per run (`reading`), in one short connection."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from hodei.diagnose.readings import ids, probes
from hodei.diagnose.registry import CheckContext, Outcome, check
from hodei.durations import human_age
from hodei.errors import first_line
from hodei.report.model import Status


@dataclass
class NatsReading:
    url: str
    error: str = ""  # how connecting failed ("" when it did not)
    version: str = ""
    stream: dict[str, Any] | None = None  # None: no such stream
    #: consumer name -> its numbers, or None when the stream has no such consumer.
    consumers: dict[str, dict[str, Any] | None] = field(default_factory=dict)


async def _read(ctx: CheckContext) -> NatsReading:
    import nats.js.errors

    from hodei.event_stream import NatsUnavailable, connect

    broker = ctx.nats
    assert broker is not None
    reading = NatsReading(str(broker.nats_url))
    try:
        nc = await connect(broker, wait=ctx.thresholds.nats_timeout_s)
    except NatsUnavailable as exc:
        reading.error = str(exc)
        return reading
    try:
        reading.version = str(nc.connected_server_version)
        js = nc.jetstream(timeout=ctx.thresholds.nats_timeout_s)
        try:
            info = await js.stream_info(broker.stream)
        except nats.js.errors.NotFoundError:
            return reading
        reading.stream = {
            "messages": info.state.messages,
            "last_seq": info.state.last_seq,
            "subjects": list(info.config.subjects or []),
            "duplicate_window_s": info.config.duplicate_window,
        }
        for name in ctx.nats_consumers:
            try:
                c = await js.consumer_info(broker.stream, name)
            except nats.js.errors.NotFoundError:
                reading.consumers[name] = None
                continue
            reading.consumers[name] = {
                "num_pending": int(c.num_pending or 0),
                "num_ack_pending": int(c.num_ack_pending or 0),
                "num_redelivered": int(c.num_redelivered or 0),
                "delivered_seq": c.delivered.stream_seq if c.delivered else 0,
            }
    except Exception as exc:  # JetStream off, a timeout: said, never raised
        reading.error = reading.error or f"JetStream at {reading.url}: {first_line(exc)}"
    finally:
        await nc.close()
    return reading


def reading(ctx: CheckContext) -> NatsReading:
    if "nats" not in ctx.facts:
        ctx.facts["nats"] = asyncio.run(_read(ctx))
    result: NatsReading = ctx.facts["nats"]
    return result


def _backlog(ctx: CheckContext) -> str:
    if ctx.session is None:
        return "the outbox was not read (no database)"
    o = probes(ctx).one("outbox_summary")
    count = int(o.get("unpublished") or 0)
    if not count:
        return "no outbox row waits yet"
    return (
        f"{count} outbox row(s) wait unpublished, the oldest "
        f"{human_age(o.get('oldest_unpublished_age_s'))} old"
    )


@check(
    "nats.reachable",
    "NATS",
    "NATS answers",
    "nats",
    "the NATS of --nats-url (HODEI_NATS_URL) accepts a connection within nats_timeout_s; "
    "unreachable -> FAIL, with the outbox backlog it causes",
)
def nats_reachable(ctx: CheckContext) -> Outcome:
    r = reading(ctx)
    if not r.error:
        return Outcome(Status.PASS, f"NATS {r.version} at {r.url} answers", "a connection")
    backlog = _backlog(ctx)
    return Outcome(
        Status.FAIL,
        r.error,
        f"a connection within {human_age(ctx.thresholds.nats_timeout_s)}",
        [r.error, backlog],
        "NATS_UNREACHABLE",
        {"url": r.url, "error": r.error, "backlog": backlog},
    )


@check(
    "nats.stream",
    "NATS",
    "The events stream exists",
    "nats",
    "the stream of --nats-stream (HODEI_NATS_STREAM, default HODEI) is on NATS: the relay "
    "creates it at start, so missing -> FAIL (deleted, or no relay publishes to NATS)",
)
def nats_stream(ctx: CheckContext) -> Outcome:
    r = reading(ctx)
    assert ctx.nats is not None
    name = ctx.nats.stream
    if r.error:
        return Outcome(Status.SKIP, "NATS unreachable")
    if r.stream is None:
        return Outcome(
            Status.FAIL,
            f"no stream {name} at {r.url}",
            "the stream exists",
            [f"stream {name} not found at {r.url}"],
            "NATS_STREAM_MISSING",
            {"stream": name, "url": r.url},
        )
    s = r.stream
    return Outcome(
        Status.PASS,
        f"stream {name}: {s['messages']} message(s), last sequence {s['last_seq']}, "
        f"subjects {', '.join(s['subjects'])}, duplicate window "
        f"{human_age(s['duplicate_window_s'])}",
        "the stream exists",
    )


@check(
    "nats.consumer_lag",
    "NATS",
    "Event consumers keep up",
    "nats",
    "each durable consumer named by --nats-consumer has at most nats_consumer_lag "
    "messages not yet delivered (num_pending) -> else WARN; a consumer that does not "
    "exist -> WARN",
)
def nats_consumer_lag(ctx: CheckContext) -> Outcome:
    if not ctx.nats_consumers:
        return Outcome(Status.SKIP, "no --nats-consumer given")
    r = reading(ctx)
    if r.error or r.stream is None:
        return Outcome(Status.SKIP, "NATS unreachable" if r.error else "no events stream")
    limit = ctx.thresholds.nats_consumer_lag
    threshold = f"num_pending <= {limit}"
    evidence = [
        f"consumer {name}: not found on stream {ctx.nats.stream if ctx.nats else '?'}"
        if c is None
        else f"consumer {name}: {c['num_pending']} pending, {c['num_ack_pending']} "
        f"delivered but unacknowledged, {c['num_redelivered']} redelivered, delivered up "
        f"to sequence {c['delivered_seq']} of {r.stream['last_seq']}"
        for name, c in r.consumers.items()
    ]
    missing = [name for name, c in r.consumers.items() if c is None]
    lagging = {
        name: c["num_pending"]
        for name, c in r.consumers.items()
        if c is not None and c["num_pending"] > limit
    }
    if lagging:
        name, pending = max(lagging.items(), key=lambda kv: kv[1])
        return Outcome(
            Status.WARN,
            f"{len(lagging)} consumer(s) behind: {name} has {pending} message(s) pending",
            threshold,
            evidence,
            "NATS_CONSUMER_LAG",
            {"consumer": name, "pending": pending, "limit": limit, "count": len(lagging)},
        )
    if missing:
        return Outcome(
            Status.WARN,
            f"no consumer {missing[0]} on the stream",
            "the consumer exists",
            evidence,
            "NATS_CONSUMER_MISSING",
            {"consumer": missing[0], "stream": ctx.nats.stream if ctx.nats else ""},
        )
    worst = max(c["num_pending"] for c in r.consumers.values() if c is not None)
    return Outcome(
        Status.PASS,
        f"{len(r.consumers)} consumer(s), at most {worst} pending",
        threshold,
        evidence,
    )


@check(
    "nats.dead_letters",
    "Outbox",
    "No outbox row dead-lettered",
    "database",
    "outbox rows the relay gave up on (dead_at: refused broker.max_attempts times, sent "
    "to the dead-letter subject instead) -> WARN, with their last error",
)
def nats_dead_letters(ctx: CheckContext) -> Outcome:
    if ctx.nats is None:
        # Only the NATS transport dead-letters; without it there is nothing to read
        # (and a schema without these columns is database.schema's to name).
        return Outcome(Status.SKIP, "no --nats-url (dead letters come from the NATS relay)")
    rows = probes(ctx).all("outbox_dead_letters", {"limit": 5})
    summary = probes(ctx).one("outbox_dead_letter_count")
    count = int(summary.get("n") or 0)
    if not count:
        return Outcome(Status.PASS, "0 dead-lettered rows", "0")
    newest = rows[0]
    return Outcome(
        Status.WARN,
        f"{count} dead-lettered row(s), the newest {human_age(newest['dead_age_s'])} ago",
        "0",
        [
            f"outbox row {r['id']} ({r['topic']}, event {r['event_id']}): "
            f"{r['publish_attempts']} attempt(s), {r['last_error']}"
            for r in rows
        ],
        "OUTBOX_DEAD_LETTERED",
        {"count": count, "error": newest["last_error"] or "", "rows": ids(rows)},
    )
