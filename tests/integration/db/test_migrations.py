"""Migrations produce the expected schema; the seed report's debug queries run unchanged."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from hodei.db.databases import create_database, drop_database
from hodei.db.migrate import available_migrations, current_version, latest_version, migrate

SEED_DEBUG_QUERIES = [
    "SELECT id, state, attempts, created_at FROM jobs ORDER BY created_at DESC LIMIT 5;",
    "SELECT jq.job_id, jq.enqueued_at, j.state FROM job_queue jq JOIN jobs j ON jq.job_id = j.id;",
    "SELECT id, state, last_heartbeat, current_job_id FROM workers;",
    "SELECT event_type, aggregate_id, actor, occurred_at FROM domain_events "
    "ORDER BY occurred_at DESC LIMIT 10;",
]

EXPECTED_COLUMNS = {
    "jobs": {
        "id",
        "state",
        "attempts",
        "max_attempts",
        "worker_id",
        "created_at",
        "ack_deadline",
        "log_seq",
        "attempt_lines",
        "exit_code",
        "correlation_id",
        "secret_names",
        "secret_env",
        "selector",
    },
    "job_queue": {"job_id", "enqueued_at", "priority"},
    "workers": {
        "id",
        "state",
        "last_heartbeat",
        "current_job_id",
        "server_id",
        "slots",
        "provider",
    },
    "provisioned_workers": {
        "id",
        "provider",
        "worker_name",
        "handle",
        "state",
        "labels",
        "token_id",
        "worker_id",
        "last_error",
        "registered_at",
        "removed_at",
    },
    "provider_status": {"provider", "server_id", "healthy", "detail", "circuit_open", "last_error"},
    "domain_events": {
        "id",
        "event_type",
        "aggregate_type",
        "aggregate_id",
        "actor",
        "correlation_id",
        "payload",
        "occurred_at",
    },
    "outbox_events": {
        "id",
        "event_id",
        "topic",
        "payload",
        "created_at",
        "published_at",
        "dead_at",
    },
    "job_logs": {"job_id", "sequence", "attempt", "is_stderr", "line", "ts"},
    "server_status": {
        "server_id",
        "dispatcher_enabled",
        "dispatcher_last_cycle_at",
        "dispatcher_cycles",
        "dispatched_total",
        "heartbeat_at",
        "stopped_at",
        "listen_address",
        "dispatcher_last_error",
        "dispatcher_last_error_at",
        "clock_skew_s",
    },
    "schema_migrations": {"version", "name", "applied_at"},
    "submission_keys": {"key", "request_hash", "job_ids", "created_at"},
}


pytestmark = pytest.mark.integration


def test_migrations_yield_expected_tables_and_columns(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ).fetchall()
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(table, set()).add(column)
    for table, expected in EXPECTED_COLUMNS.items():
        assert table in columns, f"missing table {table}"
        assert expected <= columns[table], f"{table} lacks {expected - columns[table]}"


@pytest.mark.parametrize("statement", SEED_DEBUG_QUERIES)
def test_seed_debug_queries_run_unchanged(db_url: str, statement: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO jobs (id, command) VALUES ('26e120ad-6b4b-4f6b-af7e-b02273abb646', "
            "ARRAY['true']); INSERT INTO job_queue (job_id) "
            "VALUES ('26e120ad-6b4b-4f6b-af7e-b02273abb646')"
        )
        cur = conn.execute(statement)
        names = [d.name for d in cur.description or []]
        cur.fetchall()
    assert len(names) >= 3


async def test_migrate_is_recorded_and_idempotent(db_url: str) -> None:
    # db_url comes from an already-migrated template: a second run applies nothing.
    assert await migrate(db_url) == []
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        assert await current_version(conn) == latest_version()
        cur = await conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        recorded = await cur.fetchall()
    assert [(m.version, m.name) for m in available_migrations()] == recorded


async def test_migrate_empty_database(pg_admin_url: str) -> None:
    name = f"hodei_empty_{uuid.uuid4().hex[:8]}"
    target = create_database(pg_admin_url, name)
    try:
        async with await psycopg.AsyncConnection.connect(target) as conn:
            assert await current_version(conn) == 0
        applied = await migrate(target)
        assert [m.version for m in applied] == [m.version for m in available_migrations()]
        async with await psycopg.AsyncConnection.connect(target) as conn:
            assert await current_version(conn) == latest_version()
    finally:
        drop_database(pg_admin_url, name)
