"""The fault suite, for the checks of this file's faults: each fault is injected from
outside (SQL from another connection, a log written by a real process) into a real
deployment, and the real `hodei-diagnose` must name it: exact finding code, the
root-cause sentence, the exit code; `fault_timing.named_within` measures how long after
the fault became observable it was named."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.integration.diagnose.deployments import wait_ready_workers
from tests.integration.diagnose.fault_timing import named_within

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def targets(db_url: str, address: str) -> list[str]:
    return ["--database-url", db_url, "--server", address]


def inject(db_url: str, sql: str, *params: Any) -> float:
    """Run `sql` from another connection; returns when it became observable."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql, params or None)
    return time.monotonic()


async def deployment(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], **overrides: Any
) -> Any:
    app = await start_server(**overrides)
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    return app


# --- the schema --------------------------------------------------------------------


async def test_a_deleted_middle_migration_row_is_named(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    at = inject(db_url, "DELETE FROM schema_migrations WHERE version = 3")

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "SCHEMA_MIGRATIONS_MISSING",
        fault="schema_migrations row 3 deleted",
        observable_at=at,
    )

    assert run.code == 2, (run.failing(), run.stdout)
    assert run.failing() == {"database.schema": "FAIL"}
    assert run.report["root_cause"].startswith(
        "1 migration(s) not recorded in schema_migrations (0003_active_jobs_by_worker) "
        "although version 7 is"
    ), run.report["root_cause"]
    check = run.check("database.schema")
    assert "INSERT INTO schema_migrations (version, name) VALUES (3, 'active_jobs_by_worker')" in (
        " ".join(check["remediation"])
    )


async def test_a_dropped_index_and_column_are_named(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    at = inject(
        db_url, "DROP INDEX jobs_labels_idx; ALTER TABLE outbox_events DROP COLUMN last_error"
    )

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "SCHEMA_OBJECTS_MISSING",
        fault="index jobs_labels_idx and column outbox_events.last_error dropped",
        observable_at=at,
    )

    assert run.code == 2, (run.failing(), run.stdout)
    assert run.failing() == {"database.schema": "FAIL"}
    assert run.report["root_cause"] == (
        "2 schema object(s) the migrations create are missing or different: "
        "index jobs_labels_idx missing, column outbox_events.last_error missing"
    ), run.report["root_cause"]
    actions = " ".join(run.check("database.schema")["remediation"])
    assert "hodei/db/migrations/0001_initial.sql" in actions, actions
