"""The fault suite, database side: each fault is injected from outside (SQL from another
connection, a role's settings, a socket that never answers) into a real deployment, and
hodei-diagnose must name it with its exact finding code, root-cause sentence and exit
code, without ever ending in "internal error"."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from harness.launchers.base import free_port
from harness.waits import wait_for_async
from tests.integration.diagnose.deployments import deployment, no_crash, targets
from tests.integration.diagnose.fault_timing import named_within

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def holder(db_url: str) -> Iterator[Callable[[str], psycopg.Connection[Any]]]:
    """Another session (application_name fault-injector) that runs SQL in a transaction
    it keeps open until the test ends."""
    opened: list[psycopg.Connection[Any]] = []

    def hold(statement: str) -> psycopg.Connection[Any]:
        conn = psycopg.connect(db_url, application_name="fault-injector")
        conn.execute(statement)  # psycopg opens the transaction; nobody commits it
        opened.append(conn)
        return conn

    yield hold
    for conn in opened:
        conn.rollback()
        conn.close()


def with_user(url: str, user: str) -> str:
    """The URL with another user (and no password: the test cluster trusts local users)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@pytest.fixture
def role_url(db_url: str) -> Iterator[Callable[..., str]]:
    """A LOGIN role of its own (roles are cluster-wide: a unique name, dropped at the end)
    with SELECT on every table and pg_read_all_stats; returns its URL."""
    made: list[str] = []

    def make(*after: str) -> str:
        name = f"diag_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {name} LOGIN")
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
            conn.execute(f"GRANT pg_read_all_stats TO {name}")
            for statement in after:
                conn.execute(statement.format(role=name))
        made.append(name)
        return with_user(db_url, name)

    yield make
    with psycopg.connect(db_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE {name}")


async def test_connections_show_who_is_who_in_pg_stat_activity(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any]
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)

    def names() -> set[str]:
        with psycopg.connect(db_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE %s",
                (f"hodei-{app.server_id}-%",),
            ).fetchall()
        return {r[0].removeprefix(f"hodei-{app.server_id}-") for r in rows}

    async def seen() -> set[str]:
        return await asyncio.to_thread(names)

    roles = {"api", "worker-stream", "dispatcher", "relay", "recovery"}
    found = await wait_for_async(
        "every role's connection", seen, lambda s: roles <= s, 10.0, poll_s=0.2
    )
    assert roles <= found, found


async def test_access_exclusive_lock_names_table_and_holder(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    holder: Callable[[str], psycopg.Connection[Any]],
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    conn = await asyncio.to_thread(holder, "LOCK TABLE job_queue IN ACCESS EXCLUSIVE MODE")
    observable_at = time.monotonic()
    pid = conn.info.backend_pid

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "DB_LOCK_TIMEOUT",
        fault="LOCK TABLE job_queue IN ACCESS EXCLUSIVE MODE",
        observable_at=observable_at,
    )

    no_crash(run)
    assert run.code == 2, (run.failing(), run.stdout)
    cause = run.report["root_cause"]
    assert cause.startswith("job_queue is locked: the diagnosis waited 500 ms to read it;"), cause
    assert f"AccessExclusiveLock is held by pid {pid} (fault-injector, idle in transaction" in (
        cause
    )
    assert "LOCK TABLE job_queue IN ACCESS EXCLUSIVE MODE" in cause
    # The parts of the snapshot that do not read job_queue were still read.
    snapshot = run.report["snapshot_after"]
    assert snapshot["workers_by_state"] == {"READY": 1}, snapshot
    assert run.check("database.snapshot")["status"] == "FAIL"


async def test_exclusive_lock_is_a_blocked_dispatcher_not_a_stopped_one(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    holder: Callable[[str], psycopg.Connection[Any]],
) -> None:
    app = await deployment(db_url, start_server, spawn_worker, dispatcher={"poll_interval": 0.2})
    conn = await asyncio.to_thread(holder, "LOCK TABLE job_queue IN EXCLUSIVE MODE")
    pid = conn.info.backend_pid

    def dispatcher_waits() -> bool:
        with psycopg.connect(db_url, autocommit=True) as c:
            row = c.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND wait_event_type = 'Lock'",
                (f"hodei-{app.server_id}-dispatcher",),
            ).fetchone()
        return bool(row and row[0])

    async def waits() -> bool:
        return await asyncio.to_thread(dispatcher_waits)

    await wait_for_async("the dispatcher to wait", waits, bool, 10.0, poll_s=0.1)
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "DISPATCHER_BLOCKED",
        fault="LOCK TABLE job_queue IN EXCLUSIVE MODE",
        observable_at=observable_at,
    )

    no_crash(run)
    assert run.code == 2, (run.failing(), run.stdout)
    cause = run.report["root_cause"]
    assert cause.startswith(f"the dispatcher is blocked by pid {pid}: its statement has waited")
    assert "for a lock on job_queue held by" in cause
    assert f"pid {pid} (fault-injector, idle in transaction" in cause
    assert "LOCK TABLE job_queue IN EXCLUSIVE MODE" in cause
    assert run.check("database.sessions")["finding"] == "SESSION_BLOCKED"


async def test_dispatcher_whose_cycles_fail_is_crashing_with_its_error(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await deployment(db_url, start_server, spawn_worker, dispatcher={"poll_interval": 0.2})

    def inject() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION fault_refuse_claims() RETURNS trigger LANGUAGE plpgsql AS "
                "$$BEGIN RAISE EXCEPTION 'injected: claims refused'; END$$"
            )
            # Per statement: it fires on every cycle, even with nothing queued.
            conn.execute(
                "CREATE TRIGGER fault_refuse_claims BEFORE DELETE ON job_queue "
                "FOR EACH STATEMENT EXECUTE FUNCTION fault_refuse_claims()"
            )

    await asyncio.to_thread(inject)
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "DISPATCHER_CRASHING",
        fault="every dispatch cycle fails (trigger)",
        observable_at=observable_at,
    )

    no_crash(run)
    assert run.code == 2, (run.failing(), run.stdout)
    cause = run.report["root_cause"]
    assert cause.startswith(f"the dispatcher of server {app.server_id} is crashing:"), cause
    assert "RaiseException: injected: claims refused" in cause


async def test_dropped_table_is_a_schema_finding_naming_it(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)

    def drop() -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DROP TABLE outbox_events")

    await asyncio.to_thread(drop)
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        targets(db_url, app.address),
        "SCHEMA_OBJECT_MISSING",
        fault="DROP TABLE outbox_events",
        observable_at=observable_at,
    )

    no_crash(run)
    assert run.code == 2, (run.failing(), run.stdout)
    assert run.report["root_cause"] == (
        "the table outbox_events does not exist (probe outbox_summary): the schema was "
        "changed by hand or a migration did not complete"
    )
    assert run.report["snapshot_after"]["jobs_by_state"] is not None


async def test_missing_privilege_names_the_grant(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    role_url: Callable[..., str],
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    url = await asyncio.to_thread(role_url, "REVOKE SELECT ON outbox_events FROM {role}")
    observable_at = time.monotonic()
    role = urlsplit(url).username

    run, _ = await named_within(
        run_diagnose,
        targets(url, app.address),
        "DB_PRIVILEGE_MISSING",
        fault="REVOKE SELECT ON outbox_events",
        observable_at=observable_at,
    )

    no_crash(run)
    assert run.code == 2, (run.failing(), run.stdout)
    assert run.report["root_cause"] == (
        f"role {role} lacks SELECT on outbox_events: the diagnosis cannot read it"
    )


async def test_role_at_its_connection_limit_is_refusing_connections(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    role_url: Callable[..., str],
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    url = await asyncio.to_thread(role_url, "ALTER ROLE {role} CONNECTION LIMIT 0")
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        targets(url, app.address),
        "DATABASE_REFUSING_CONNECTIONS",
        fault="role CONNECTION LIMIT reached",
        observable_at=observable_at,
    )

    no_crash(run)
    assert run.code == 3, (run.failing(), run.stdout)
    cause = run.report["root_cause"]
    assert "refuses new connections (FATAL: too many connections for role" in cause, cause
    assert cause.endswith("its connection limit is reached")


async def test_unknown_role_is_credentials_rejected(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    url = with_user(db_url, "no_such_role_hodei")

    run, _ = await named_within(
        run_diagnose,
        targets(url, app.address),
        "DATABASE_CREDENTIALS_REJECTED",
        fault="unknown database role",
        observable_at=time.monotonic(),
    )

    no_crash(run)
    assert run.code == 3
    cause = run.report["root_cause"]
    assert 'rejects the login (FATAL: role "no_such_role_hodei" does not exist)' in cause, cause


async def test_a_database_that_does_not_exist_is_named(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    # PostgreSQL answers, the name in the URL is wrong: "check PostgreSQL is running"
    # would send the operator the wrong way.
    app = await deployment(db_url, start_server, spawn_worker)
    url = urlunsplit(urlsplit(db_url)._replace(path="/no_such_db_hodei"))

    run, _ = await named_within(
        run_diagnose,
        targets(url, app.address),
        "DATABASE_MISSING",
        fault="the database named in the URL does not exist",
        observable_at=time.monotonic(),
    )

    no_crash(run)
    assert run.code == 3
    cause = run.report["root_cause"]
    assert 'does not exist (FATAL: database "no_such_db_hodei" does not exist)' in cause, cause
    assert any("psql -l" in r for c in run.report["checks"] for r in c.get("remediation", []))


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung proxy)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for s in accepted:
        s.close()
    listener.close()


async def test_database_that_never_answers_is_a_timeout(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    silent_port: int,
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    url = f"postgresql://postgres@127.0.0.1:{silent_port}/hodei"

    run, _ = await named_within(
        run_diagnose,
        targets(url, app.address),
        "DATABASE_TIMEOUT",
        fault="database socket accepts and never answers",
        observable_at=time.monotonic(),
    )

    no_crash(run)
    assert run.code == 3
    assert run.report["root_cause"].startswith(
        f"the database at {url} accepted the connection but did not answer in time "
        "(connection timeout expired)"
    ), run.report["root_cause"]


async def test_database_down_is_refused(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], run_diagnose: Any
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/hodei"

    run, _ = await named_within(
        run_diagnose,
        targets(url, app.address),
        "DATABASE_DOWN",
        fault="nothing listens on the database port",
        observable_at=time.monotonic(),
    )

    no_crash(run)
    assert run.code == 3
    assert run.report["root_cause"] == (
        f"nothing accepts connections for the database at {url} (Connection refused): "
        "PostgreSQL is not running there"
    )


async def test_idle_transaction_on_hodei_tables_is_named(
    db_url: str,
    start_server: Any,
    spawn_worker: Callable[..., Any],
    run_diagnose: Any,
    holder: Callable[[str], psycopg.Connection[Any]],
) -> None:
    app = await deployment(db_url, start_server, spawn_worker)
    conn = await asyncio.to_thread(holder, "SELECT count(*) FROM jobs")
    await asyncio.sleep(1.2)  # idle in transaction past the threshold below
    observable_at = time.monotonic()

    run, _ = await named_within(
        run_diagnose,
        [*targets(db_url, app.address), "--threshold", "idle_xact_s=1"],
        "LONG_TRANSACTION",
        fault="session idle in transaction on jobs",
        observable_at=observable_at,
        check="database.sessions",
    )

    no_crash(run)
    assert run.code == 1, (run.failing(), run.stdout)
    sessions = run.check("database.sessions")
    assert sessions["status"] == "WARN"
    assert any(
        f"pid {conn.info.backend_pid} (fault-injector, idle in transaction" in e
        and "holds locks on jobs" in e
        for e in sessions["evidence"]
    ), sessions["evidence"]
