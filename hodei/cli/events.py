"""`hodei events tail`: follow the domain events on NATS JetStream.

An ephemeral ordered consumer on the events stream (broker.stream), nothing to clean
up: it prints one line per event (time, subject, event id, job or worker id, type), or
one JSON object a line with --json. It needs NATS (HODEI_NATS_URL or --nats-url), not
the server: the events are there once a server publishes with
HODEI_OUTBOX_TRANSPORT=nats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from hodei.errors import ConfigError, NotFound
from hodei.flags import add_setting_flags, settings_from_args


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    events = sub.add_parser("events", help="domain events on NATS JetStream: tail")
    esub = events.add_subparsers(dest="events_command", metavar="COMMAND", required=True)
    tail = esub.add_parser(
        "tail",
        parents=[common],
        help="follow the events stream, one line per event (Ctrl-C to stop)",
    )
    tail.add_argument(
        "--subject",
        action="append",
        metavar="SUBJECT",
        help="only these subjects (wildcards * and >; repeatable), e.g. "
        "'hodei.events.job.>' (default: every event, PREFIX.>)",
    )
    tail.add_argument("--json", action="store_true", help="one JSON object a line")
    tail.add_argument(
        "--all", action="store_true", help="from the start of the stream (default: new events)"
    )
    tail.add_argument(
        "--count", type=int, metavar="N", help="stop after N events (default: follow)"
    )
    add_setting_flags(tail, "broker.nats_url", "broker.stream", "broker.subject_prefix")
    tail.set_defaults(sync_handler=events_tail)


def events_tail(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if not settings.broker.nats_url:
        raise ConfigError("NATS is not configured: set HODEI_NATS_URL or --nats-url")
    if args.count is not None and args.count < 1:
        raise ConfigError("--count must be 1 or more")
    as_json = args.json or getattr(args, "output", "table") == "json"
    subjects = args.subject or [f"{settings.broker.subject_prefix}.>"]
    return asyncio.run(_tail(settings.broker, subjects, as_json, args.all, args.count))


async def _tail(
    broker: Any, subjects: list[str], as_json: bool, from_start: bool, count: int | None
) -> int:
    import nats.js.errors
    from nats.js.api import DeliverPolicy

    from hodei.event_stream import connect, subject_matches

    nc = await connect(broker)
    try:
        js = nc.jetstream()
        try:
            await js.stream_info(broker.stream)
        except nats.js.errors.NotFoundError:
            raise NotFound(
                f"no stream {broker.stream!r} at {broker.nats_url}: nothing published there "
                "yet (is the server's HODEI_OUTBOX_TRANSPORT=nats?)"
            ) from None
        policy = DeliverPolicy.ALL if from_start else DeliverPolicy.NEW
        # Several subjects: the whole stream, filtered here (a consumer's
        # filter_subjects needs nats-server 2.10; Debian 12 ships 2.9).
        sub = await js.subscribe(
            subjects[0] if len(subjects) == 1 else f"{broker.subject_prefix}.>",
            stream=broker.stream,
            ordered_consumer=True,
            deliver_policy=policy,
        )
        seen = 0
        async for msg in sub.messages:
            if len(subjects) > 1 and not any(subject_matches(p, msg.subject) for p in subjects):
                continue
            print(_render(msg, as_json), flush=True)
            seen += 1
            if count is not None and seen >= count:
                break
        return 0
    finally:
        await nc.close()


def _render(msg: Any, as_json: bool) -> str:
    headers = msg.headers or {}
    try:
        body = json.loads(msg.data)
    except ValueError:
        body = {}
    event = body.get("event") or {}
    seq = msg.metadata.sequence.stream if msg.metadata else None
    if "error" in body:  # a dead letter: the event itself could not be published
        record = {
            "subject": msg.subject,
            "seq": seq,
            "event_id": body.get("event_id"),
            "outbox_id": body.get("outbox_id"),
            "type": "DeadLetter",
            "aggregate_id": body.get("aggregate_id"),
            "error": body.get("error"),
        }
        if as_json:
            return json.dumps(record)
        return (
            f"-  {msg.subject}  event={record['event_id']}  "
            f"{body.get('topic')}  dead: {record['error']}"
        )
    aggregate = event.get("aggregate_type") or ""
    record = {
        "subject": msg.subject,
        "seq": seq,
        "event_id": event.get("event_id") or headers.get("Nats-Msg-Id"),
        "type": event.get("event_type") or headers.get("Hodei-Event-Type"),
        "aggregate_type": aggregate,
        "aggregate_id": event.get("aggregate_id"),
        "time": event.get("occurred_at"),
        "correlation_id": event.get("correlation_id") or "",
        "payload": event.get("payload"),
    }
    if as_json:
        return json.dumps(record)
    return (
        f"{record['time'] or '-'}  {msg.subject}  event={record['event_id']}  "
        f"{aggregate or 'aggregate'}={record['aggregate_id']}  {record['type']}"
    )
