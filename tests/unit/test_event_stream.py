"""hodei.event_stream and hodei.broker_settings: subjects per event type, the stream's
configuration, and the transport settings' one-line refusals."""

from __future__ import annotations

import pytest

from hodei.domain.events import AggregateType, EventType
from hodei.errors import ConfigError
from hodei.event_stream import stream_config, subject_for, subject_matches
from hodei.settings import load_settings


@pytest.mark.parametrize(
    ("topic", "subject"),
    [
        ("job.JobSucceeded", "hodei.events.job.succeeded"),
        ("job.JobCancelRequested", "hodei.events.job.cancel_requested"),
        ("job.JobTimedOut", "hodei.events.job.timed_out"),
        ("worker.WorkerReady", "hodei.events.worker.ready"),
        ("job.Repaired", "hodei.events.job.repaired"),
    ],
)
def test_each_event_type_has_its_subject(topic: str, subject: str) -> None:
    assert subject_for("hodei.events", topic) == subject


def test_no_two_event_types_share_a_subject() -> None:
    subjects = {
        subject_for("p", f"{aggregate}.{event}")
        for aggregate in AggregateType
        for event in EventType
    }
    assert len(subjects) == len(AggregateType) * len(EventType)
    assert "p.dead" not in {s.rpartition(".")[0] for s in subjects}


def test_the_stream_takes_every_subject_under_the_prefix() -> None:
    broker = load_settings(broker={"stream": "EV", "subject_prefix": "acme.ev"}).broker
    config = stream_config(broker)
    assert (config.name, config.subjects, config.duplicate_window) == ("EV", ["acme.ev.>"], 120.0)
    assert broker.dead_subject == "acme.ev.dead"


def test_notify_is_the_default_and_nats_needs_a_url() -> None:
    assert load_settings().broker.transport == "notify"
    with pytest.raises(ConfigError, match="HODEI_OUTBOX_TRANSPORT=nats needs HODEI_NATS_URL"):
        load_settings(broker={"transport": "nats"})
    with pytest.raises(ConfigError, match=r"broker.nats_url.*must start with nats://"):
        load_settings(broker={"nats_url": "http://x:4222"})
    broker = load_settings(
        broker={"transport": "nats", "nats_url": "nats://a:1, nats://b:2"}
    ).broker
    assert broker.servers == ["nats://a:1", "nats://b:2"]


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("hodei.events.job.>", "hodei.events.job.succeeded", True),
        ("hodei.events.job.>", "hodei.events.job", False),
        ("hodei.events.*.ready", "hodei.events.worker.ready", True),
        ("hodei.events.*.ready", "hodei.events.worker.ready.x", False),
        ("hodei.events.dead", "hodei.events.dead", True),
        ("hodei.events.dead", "hodei.events.job.created", False),
        (">", "a", True),
    ],
)
def test_subjects_match_as_nats_matches_them(pattern: str, subject: str, matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches
