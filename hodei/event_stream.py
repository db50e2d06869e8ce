"""What the outbox relay, `hodei events tail`, hodei-diagnose and the benchmark share
about the events on NATS JetStream: the connection, the stream and the subjects.

One stream (broker.stream) holds every subject under broker.subject_prefix: one per
event type (`hodei.events.job.succeeded`, `hodei.events.worker.ready`) and the dead
letters (`hodei.events.dead`). A message's id (the `Nats-Msg-Id` header) is the domain
event's id, so the stream drops a republish within its duplicate window.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from hodei.broker_settings import BrokerSettings
from hodei.errors import Unavailable, first_line

logger = logging.getLogger(__name__)

MSG_ID = "Nats-Msg-Id"
#: Headers beside the message id: a consumer can route without parsing the body.
OUTBOX_ID = "Hodei-Outbox-Id"
EVENT_TYPE = "Hodei-Event-Type"
AGGREGATE_ID = "Hodei-Aggregate-Id"

#: Everything that means "NATS (or its JetStream) cannot be reached right now", as
#: opposed to a refusal of one message.
UNREACHABLE = (
    OSError,
    TimeoutError,
    nats.errors.Error,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.NoStreamResponseError,
)

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class NatsUnavailable(Unavailable):
    """NATS (or JetStream) cannot be reached: one line naming the URL."""


def subject_for(prefix: str, topic: str) -> str:
    """The subject of an outbox topic (`job.JobSucceeded` -> `PREFIX.job.succeeded`,
    `job.JobCancelRequested` -> `PREFIX.job.cancel_requested`)."""
    aggregate, _, event_type = topic.partition(".")
    name = event_type
    if name.lower().startswith(aggregate.lower()) and len(name) > len(aggregate):
        name = name[len(aggregate) :]
    return f"{prefix}.{aggregate}.{_CAMEL.sub('_', name).lower()}"


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    want, got = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(got) > i
        if i >= len(got) or (token != "*" and token != got[i]):
            return False
    return len(got) == len(want)


def stream_config(settings: BrokerSettings) -> StreamConfig:
    return StreamConfig(
        name=settings.stream,
        subjects=[f"{settings.subject_prefix}.>"],
        storage=StorageType.FILE,
        duplicate_window=settings.duplicate_window,
    )


async def _quiet_error(exc: Exception) -> None:
    # nats-py logs every failed reconnect at ERROR with a traceback; the relay says
    # once that NATS is down and once that it is back.
    logger.debug("nats client error: %s", first_line(exc))


async def connect(
    settings: BrokerSettings, *, wait: float = 2.0, reconnect: bool = False
) -> Client:
    """A connection to broker.nats_url. `reconnect`: the client rides out a short
    outage by itself (a few attempts, then it closes and the caller connects anew)."""
    if not settings.servers:
        raise NatsUnavailable("NATS is not configured: set HODEI_NATS_URL or --nats-url")
    try:
        return await nats.connect(
            servers=settings.servers,
            connect_timeout=max(1, round(wait)),
            allow_reconnect=reconnect,
            # > 0 in both cases: nats-py drops a server from its pool only past a positive
            # limit; with 0 (or -1) even the first connect never gives up.
            max_reconnect_attempts=3 if reconnect else 1,
            reconnect_time_wait=0.5 if reconnect else 0.2,
            error_cb=_quiet_error,
            name="hodei",
        )
    except UNREACHABLE as exc:
        raise NatsUnavailable(
            f"NATS unreachable at {settings.nats_url}: {first_line(exc) or type(exc).__name__}"
        ) from None


async def ensure_stream(js: JetStreamContext, settings: BrokerSettings) -> None:
    """Create the stream, or bring its subjects and duplicate window to the settings
    (idempotent: every relay does it at start; the stream's other fields are kept)."""
    wanted = stream_config(settings)
    try:
        info = await js.stream_info(settings.stream)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(wanted)
            logger.info(
                "created JetStream stream %s",
                settings.stream,
                extra={"stream": settings.stream, "subjects": wanted.subjects},
            )
            return
        except nats.js.errors.BadRequestError:
            info = await js.stream_info(settings.stream)  # another relay created it first
    current = info.config
    if current.subjects != wanted.subjects or current.duplicate_window != wanted.duplicate_window:
        await js.update_stream(
            replace(current, subjects=wanted.subjects, duplicate_window=wanted.duplicate_window)
        )
        logger.info(
            "updated JetStream stream %s", settings.stream, extra={"stream": settings.stream}
        )
