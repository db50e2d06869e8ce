"""The embedded default: no database URL -> pgserver in the data dir, database `hodei`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from hodei.db.embedded import resolve_database_url
from hodei.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir():  # type: ignore[no-untyped-def]
    # Not under pytest's tmp_path: concurrent pytest runs on the machine prune old
    # basetemp directories, which would pull the data directory from under initdb.
    root = Path(tempfile.mkdtemp(prefix="hodei-embedded-test-"))
    path = root / "pgdata"
    yield path
    import pgserver

    if path.exists():
        pgserver.get_server(path).cleanup()  # stops the embedded server
    shutil.rmtree(root, ignore_errors=True)


def test_resolve_uses_configured_url_first(db_url: str) -> None:
    assert resolve_database_url(Settings(database={"url": db_url})) == db_url


def test_embedded_server_is_started_and_reused(data_dir: Path) -> None:
    url = resolve_database_url(Settings(database={"data_dir": data_dir}))
    assert "/hodei" in url and (data_dir / "PG_VERSION").exists()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("hodei",)
    assert (
        resolve_database_url(Settings(database={"data_dir": data_dir})) == url
    )  # reused, not re-created


async def test_server_app_runs_on_the_embedded_default(data_dir: Path, start_server) -> None:  # type: ignore[no-untyped-def]
    app = await start_server(database={"url": None, "data_dir": data_dir})
    assert app.database_url.startswith("postgresql://") and "/hodei" in app.database_url
    with psycopg.connect(app.database_url) as conn:
        version = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    assert version is not None and version[0] >= 1
