"""The read-only probes against a real PostgreSQL (a fresh migrated database per test)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from hodei.db.migrate import latest_version
from hodei.diagnose.probes import ProbeFailed, probe_queries, probe_session, take_snapshot
from hodei.errors import Unavailable

pytestmark = pytest.mark.integration


def test_snapshot_of_an_empty_database(db_url: str) -> None:
    snap = take_snapshot(db_url)
    assert snap.schema_version == latest_version()
    assert snap.jobs_total == 0 and snap.queue_depth == 0 and snap.outbox_total == 0
    assert snap.oldest_pending_age_s is None and snap.servers == []


def test_snapshot_counts_what_is_in_the_tables(db_url: str) -> None:
    job, worker = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO jobs (id, command, created_at) VALUES "
            "(%s, ARRAY['true'], now() - interval '5 minutes')",
            (job,),
        )
        conn.execute(
            "INSERT INTO job_queue (job_id, enqueued_at) VALUES (%s, now() - interval '5 minutes')",
            (job,),
        )
        conn.execute(
            "INSERT INTO workers (id, state, last_heartbeat, server_id) VALUES "
            "(%s, 'READY', now(), 'srv')",
            (worker,),
        )
        conn.execute(
            "INSERT INTO domain_events (event_type, aggregate_type, aggregate_id) "
            "VALUES ('JobCreated', 'job', %s)",
            (job,),
        )
    snap = take_snapshot(db_url)
    assert snap.jobs_by_state == {"PENDING": 1}
    assert snap.oldest_pending_age_s is not None and 290 < snap.oldest_pending_age_s < 400
    assert snap.queue_depth == 1 and snap.queue_sample[0]["job_id"] == job
    assert snap.workers_by_state == {"READY": 1}
    assert snap.workers_sample[0]["id"] == worker
    assert snap.workers_sample[0]["heartbeat_age_s"] < 60
    assert snap.events_by_type == {"JobCreated": 1} and snap.outbox_total == 0
    assert snap.recent_events[0]["aggregate_id"] == job


def test_probe_session_cannot_write(db_url: str) -> None:
    with probe_session(db_url) as session:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            session.conn.execute("CREATE TABLE should_not_exist (x int)")
        session.conn.rollback()
        timeout = session.conn.execute("SHOW statement_timeout").fetchone()
    assert timeout is not None and timeout["statement_timeout"] == "2s"


def test_every_named_probe_runs(db_url: str) -> None:
    params = {
        "age_s": 1.0,
        "limit": 5,
        "window_s": 60.0,
        "ack_s": 10.0,
        "grace_s": 1.0,
        "stale_s": 20.0,
        "server_stale_s": 30.0,
        "skew_s": 2.0,
        "long_s": 60.0,
        "idle_s": 10.0,
        "minutes": 3,
        "tolerance_s": 2.0,
        "ids": [str(uuid.uuid4())],
        "id": str(uuid.uuid4()),
    }
    with probe_session(db_url) as session:
        for name in probe_queries():
            session.all(name, params)  # raises on a broken query


def test_unreachable_database_is_a_one_line_redacted_error() -> None:
    with (
        pytest.raises(Unavailable) as info,
        probe_session("postgresql://u:topsecret@127.0.0.1:1/x", connect_timeout_s=1),
    ):
        pass
    message = str(info.value)
    assert "topsecret" not in message and "u:***@127.0.0.1:1" in message
    assert "\n" not in message


def test_probes_inside_consistent_read_one_snapshot_and_survive_a_failure(db_url: str) -> None:
    """A count and its breakdown cannot disagree: every probe of a run reads the same
    REPEATABLE READ snapshot, even after another probe failed (a savepoint each)."""

    def add_pending_job() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO jobs (id, command) VALUES (%s, ARRAY['true'])", (uuid.uuid4(),)
            )

    add_pending_job()
    with probe_session(db_url) as session, session.consistent():
        before = session.all("jobs_by_state")
        add_pending_job()  # committed by another session in the middle of the run
        with pytest.raises(ProbeFailed) as failed:
            session.all("job_row", {"id": "not-a-uuid"})
        after = session.all("jobs_by_state")
        counted = session.one("oldest_pending")
    assert isinstance(failed.value.error, psycopg.errors.InvalidTextRepresentation)
    assert before == after == [{"state": "PENDING", "n": 1}]
    assert counted["n"] == 1
    with probe_session(db_url) as session:  # a new run sees the new job
        assert session.all("jobs_by_state") == [{"state": "PENDING", "n": 2}]
