"""The settings group of the outbox's transport (`broker`): PostgreSQL NOTIFY, the
embedded default, or NATS JetStream. Declared like every other group
(hodei.setting_groups); import it from hodei.settings."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator, model_validator

from hodei.setting_groups import _Group, setting


class BrokerSettings(_Group):
    """Where the outbox relay publishes domain events, and how `hodei events tail` and
    `hodei-diagnose` find them on NATS."""

    transport: Literal["notify", "nats"] = setting(
        "notify",
        "HODEI_OUTBOX_TRANSPORT",
        "notify (PostgreSQL NOTIFY, embedded) or nats (NATS JetStream at HODEI_NATS_URL)",
        flag="--outbox-transport",
    )
    nats_url: str | None = setting(
        None,
        "HODEI_NATS_URL",
        "NATS server(s), comma-separated, e.g. nats://127.0.0.1:4222",
        flag="--nats-url",
    )
    stream: str = setting(
        "HODEI",
        "HODEI_NATS_STREAM",
        "JetStream stream of the events (created or updated at start)",
        flag="--nats-stream",
        pattern=r"^[A-Za-z0-9_-]+$",
    )
    subject_prefix: str = setting(
        "hodei.events",
        "HODEI_NATS_SUBJECT_PREFIX",
        "subjects: PREFIX.job.succeeded, PREFIX.worker.ready...; PREFIX.dead: dead letters",
        flag="--nats-subject-prefix",
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
    )
    ack_timeout: float = setting(
        5.0, "HODEI_NATS_ACK_TIMEOUT", "wait this long for JetStream's ack of a message, s", gt=0
    )
    max_attempts: int = setting(
        5,
        "HODEI_NATS_MAX_ATTEMPTS",
        "a row JetStream refused this many times goes to the dead-letter subject",
        ge=1,
    )
    duplicate_window: float = setting(
        120.0,
        "HODEI_NATS_DUPLICATE_WINDOW",
        "the stream drops a message whose id (the event id) it stored this recently, s",
        ge=1,
    )

    @field_validator("nats_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        for server in value.split(","):
            if not server.strip().startswith(("nats://", "tls://", "ws://", "wss://")):
                raise ValueError("must start with nats:// (or tls://, ws://, wss://)")
        return value

    @model_validator(mode="after")
    def _nats_needs_a_url(self) -> BrokerSettings:
        if self.transport == "nats" and not self.nats_url:
            raise ValueError("HODEI_OUTBOX_TRANSPORT=nats needs HODEI_NATS_URL")
        return self

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in (self.nats_url or "").split(",") if s.strip()]

    @property
    def dead_subject(self) -> str:
        return f"{self.subject_prefix}.dead"
