"""What a worker's stream proves on its own (hodei.server.sessions): the recovery loop
trusts it over a stored heartbeat the database could not keep up to date."""

from __future__ import annotations

import uuid

from hodei.server.models import AttemptRef
from hodei.server.sessions import Session, SessionRegistry


def test_a_stream_vouches_for_its_worker_only_within_the_window() -> None:
    session = Session(uuid.uuid4())
    session.last_contact = 100.0
    assert session.vouches(2.0, now=101.9)
    assert not session.vouches(2.0, now=102.1)
    session.backlogged = True  # its messages wait on this server's database
    assert session.vouches(2.0, now=500.0)
    session.close()
    assert not session.vouches(2.0, now=100.0)


def test_the_registry_vouches_only_for_the_workers_streaming_here() -> None:
    registry = SessionRegistry()
    here = Session(uuid.uuid4())
    registry.add(here)
    assert registry.vouches_for(here.worker_id, 10.0)
    assert not registry.vouches_for(uuid.uuid4(), 10.0)
    registry.remove(here)
    assert not registry.vouches_for(here.worker_id, 10.0)


def test_an_ack_read_is_remembered_for_its_attempt_only() -> None:
    registry = SessionRegistry()
    session = Session(uuid.uuid4())
    registry.add(session)
    job = uuid.uuid4()
    session.ack_read(AttemptRef(job, 1))
    assert registry.has_ack(session.worker_id, AttemptRef(job, 1))
    assert not registry.has_ack(session.worker_id, AttemptRef(job, 2))
    assert not registry.has_ack(uuid.uuid4(), AttemptRef(job, 1))
    assert not registry.has_ack(None, AttemptRef(job, 1))
    session.close()
    assert not registry.has_ack(session.worker_id, AttemptRef(job, 1))


def test_the_remembered_acks_are_bounded() -> None:
    session = Session(uuid.uuid4())
    first = AttemptRef(uuid.uuid4(), 1)
    session.ack_read(first)
    for _ in range(5000):
        session.ack_read(AttemptRef(uuid.uuid4(), 1))
    assert not session.has_ack(first)
    assert len(session._acks_read) == 4096
