"""Whole databases on a PostgreSQL server: name one in a URL, create, clone, drop.

The embedded server makes the platform's database here; the e2e harness makes one per
run and the tests one per test (cloned from a migrated template), all through these
functions. CREATE/DROP DATABASE cannot run inside a transaction, hence autocommit.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


def with_database(url: str, database: str) -> str:
    """The same server URL with another database name. It stays a URL (settings want
    one), and pgserver's URLs keep their socket directory in the query string, so only
    the path changes."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def create_database(
    admin_url: str, name: str, *, template: str | None = None, connect_timeout: int = 10
) -> str:
    """CREATE DATABASE `name` (a copy of `template` if given); returns its URL."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=connect_timeout) as conn:
        conn.execute(statement)
    return with_database(admin_url, name)


def ensure_database(admin_url: str, name: str) -> str:
    """Create `name` unless it exists; returns its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not found:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str, *, connect_timeout: int = 10) -> None:
    """DROP DATABASE IF EXISTS, disconnecting whoever is still connected."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=connect_timeout) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
