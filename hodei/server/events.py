"""Writing domain events and their outbox rows inside the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb

from hodei.db.connector import Tx
from hodei.domain.events import AggregateType, EventType


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    aggregate_type: AggregateType
    aggregate_id: uuid.UUID
    actor: str = ""
    correlation_id: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


def job_event(
    event_type: EventType, job_id: uuid.UUID, actor: str, correlation_id: str = "", **payload: Any
) -> Event:
    return Event(event_type, AggregateType.JOB, job_id, actor, correlation_id, _clean(payload))


def worker_event(event_type: EventType, worker_id: uuid.UUID, actor: str, **payload: Any) -> Event:
    return Event(event_type, AggregateType.WORKER, worker_id, actor, "", _clean(payload))


def _clean(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in payload.items()}


async def record(tx: Tx, events: list[Event]) -> None:
    """Insert the events and their outbox rows in one statement, in the caller's transaction.

    The statement also NOTIFYs the outbox relay; PostgreSQL delivers it at commit,
    so a rolled-back transaction leaves neither rows nor a wake-up.
    """
    if not events:
        return
    await tx.one(
        "insert_events",
        {
            "types": [str(e.type) for e in events],
            "aggregate_types": [str(e.aggregate_type) for e in events],
            "aggregate_ids": [e.aggregate_id for e in events],
            "actors": [e.actor for e in events],
            "correlation_ids": [e.correlation_id for e in events],
            "payloads": [Jsonb(e.payload) for e in events],
        },
    )
