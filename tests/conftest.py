"""Shared fixtures for every test suite (unit, integration, features).

Fixtures (names are a contract other engineers rely on):

- ``pg_admin_url`` (session, sync): URL of a superuser connection to a real PostgreSQL
  server. By default an embedded ``pgserver`` started in a temporary directory for the
  session; set ``HODEI_TEST_DATABASE_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``)
  to use another server instead. Each test database is created on it.
- ``template_db`` (session, sync): name of a database migrated to the latest schema, used
  as the template for per-test databases.
- ``db_url`` (function, sync): URL of a fresh, migrated, empty database cloned from the
  template (``CREATE DATABASE ... TEMPLATE``) for this test; dropped at teardown.
- ``make_db_url`` (function, sync): factory ``make_db_url() -> str`` for tests that need
  more than one fresh database.
- ``start_server`` (function, async factory): ``app = await start_server(**overrides)``
  returns a started ``hodei.server.app.ServerApp`` on a free port on 127.0.0.1 using
  ``db_url`` (unless ``database={"url": ...}`` is overridden); ``app.port`` is the bound port,
  ``app.address`` is ``"127.0.0.1:<port>"``. Authentication is on, as in production: an
  admin and a worker token are made for each server and kept by its address
  (``tests.integration.tokens.server_token(address, role)``), where the helpers that
  take an address find them; ``auth={"mode": "off"}`` turns it off (loudly logged).
  Overrides are Settings groups, as Settings itself takes them (e.g.
  ``dispatcher={"enabled": False, "poll_interval": 0.2}``); each group is merged over the
  test defaults. Every server started is stopped at teardown.
- ``test_settings`` (function): ``make(**overrides) -> Settings`` with test defaults
  (db_url, port 0, short intervals are NOT applied unless asked); overrides as above.
- ``tls_certs`` (session, sync): PEM files made at run time by trustme (harness/certs.py):
  a CA, the server's certificate, a client certificate, and a client certificate from
  another CA; ``tls_certs.server(mtls=True)`` and ``tls_certs.client("good")`` give the
  tls settings groups.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from hodei.db.databases import create_database, drop_database

if TYPE_CHECKING:
    from harness.certs import TlsCerts
    from hodei.server.app import ServerApp
    from hodei.settings import Settings

_TEMPLATE_PREFIX = "hodei_tpl_"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    external = os.environ.get("HODEI_TEST_DATABASE_URL")
    if external:
        yield external
        return
    import pgserver

    tmp = tempfile.mkdtemp(prefix="hodei-test-pg-")
    server = pgserver.get_server(tmp, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    import asyncio

    from hodei.db.migrate import migrate

    name = f"{_TEMPLATE_PREFIX}{uuid.uuid4().hex[:12]}"
    template_url = create_database(pg_admin_url, name)
    # A fresh loop in a helper thread: the session loop may already be running here.
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(migrate(template_url))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    try:
        yield name
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def make_db_url(pg_admin_url: str, template_db: str) -> Iterator[Callable[[], str]]:
    created: list[str] = []

    def make() -> str:
        name = f"hodei_test_{uuid.uuid4().hex[:12]}"
        created.append(name)
        return create_database(pg_admin_url, name, template=template_db)

    yield make
    for name in created:
        drop_database(pg_admin_url, name)


@pytest.fixture
def db_url(make_db_url: Callable[[], str]) -> str:
    return make_db_url()


@pytest.fixture
def test_settings(db_url: str) -> Callable[..., Settings]:
    from hodei.settings import Settings

    def make(**overrides: dict[str, Any]) -> Settings:
        values: dict[str, dict[str, Any]] = {
            "database": {"url": db_url},
            "server": {"host": "127.0.0.1", "port": 0},
            # The server's silence window after a start is the miss window plus this:
            # tests with short heartbeats expect a LOST soon after the start (a test
            # that restarts a server gives its workers a backoff this short too).
            "worker": {"reconnect_max_backoff": 1.0},
            # Tests run many servers at once: any free /metrics port (app.metrics_port).
            "metrics": {"port": 0, "worker_port": 0},
        }
        for group, fields in overrides.items():
            values[group] = {**values.get(group, {}), **fields}
        return Settings.model_validate(values)

    return make


@pytest.fixture
async def start_server(
    test_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Awaitable[ServerApp]]]:
    from hodei.server.app import ServerApp

    started: list[ServerApp] = []

    async def start(**overrides: Any) -> ServerApp:
        app = ServerApp(test_settings(**overrides))
        started.append(app)
        await app.start()
        if app.settings.auth.enabled:
            from tests.integration.tokens import SERVER_TOKENS, make_token

            suffix = uuid.uuid4().hex[:8]
            SERVER_TOKENS[app.address] = {
                role: await make_token(app.database_url, f"test-{role}-{suffix}", role)
                for role in ("admin", "worker")
            }
        return app

    yield start
    for app in reversed(started):
        await app.stop(grace=1.0)


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCerts:
    """A CA, the server's and a client's certificates, and a client certificate from
    another CA, as PEM files made at run time (harness/certs.py)."""
    from harness.certs import make_certs

    return make_certs(tmp_path_factory.mktemp("tls"))
