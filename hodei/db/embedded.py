"""The embedded PostgreSQL used when no database URL is configured.

`pgserver` ships real PostgreSQL binaries and runs them on a data directory, on
a unix socket, with no system server and no Docker.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

from hodei.db.databases import ensure_database
from hodei.errors import Unavailable
from hodei.settings import Settings, default_data_dir

logger = logging.getLogger(__name__)

DATABASE_NAME = "hodei"
#: A file every PostgreSQL data directory holds: a cluster was made here (running or not).
CLUSTER_MARKER = "PG_VERSION"


def start_pgserver(data_dir: Path, cleanup_mode: str | None = None) -> Any:
    """Start (or reuse) pgserver on `data_dir` and return its handle.

    Raises Unavailable with one line when it cannot start. `cleanup_mode="stop"`
    stops the server when the handle is cleaned up (throwaway data dirs).
    """
    data_dir = Path(data_dir).expanduser()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime dir at import, which it does not
            # need for a data dir we choose; its XDG_RUNTIME_DIR warning would only alarm users.
            warnings.simplefilter("ignore", category=UserWarning)
            import pgserver  # heavy import; only needed on the embedded path

            if cleanup_mode is None:
                return pgserver.get_server(data_dir)
            return pgserver.get_server(data_dir, cleanup_mode=cleanup_mode)
    except Exception as exc:  # pgserver raises assorted subprocess/OS errors
        raise Unavailable(f"cannot start the embedded PostgreSQL in {data_dir}: {exc}") from exc


def start_again(server: Any) -> None:
    """Start a stopped embedded PostgreSQL again, on the same data dir and socket.

    pgserver runs pg_ctl with a preexec_fn (to switch user when run as root), which is
    not safe in a process where gRPC's threads run: pg_ctl died of SIGSEGV in the chaos
    suite and a test. So a fresh interpreter starts it, and then `server` finds it
    running and adopts it."""
    script = "import sys, pgserver; pgserver.get_server(sys.argv[1], cleanup_mode=None)"
    try:
        subprocess.run(
            [sys.executable, "-c", script, str(server.pgdata)],
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(
            f"cannot start the embedded PostgreSQL in {server.pgdata}: {exc}"
        ) from exc
    server.ensure_postgres_running()


def embedded_url(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the embedded server on `data_dir`, create `database`, return its URL."""
    server = start_pgserver(data_dir)
    ensure_database(server.get_uri(), database)
    url: str = server.get_uri(database)
    logger.info("embedded PostgreSQL ready in %s", data_dir)
    return url


def resolve_database_url(settings: Settings) -> str:
    """settings.database.url if set, else the embedded server's URL."""
    if settings.database.url:
        return settings.database.url
    return embedded_url(settings.database.data_dir or default_data_dir())
