"""`hodei token create | list | revoke` as real processes against the database only, and
the CLI with `--token` / HODEI_TOKEN against a server with authentication on."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from tests.integration.cli_process import assert_one_line_error, hodei

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[Any]]
SpawnWorker = Callable[..., Awaitable[Any]]


async def test_create_list_revoke_with_only_the_database_url(
    start_server: StartServer, spawn_worker: SpawnWorker, db_url: str
) -> None:
    db = {"HODEI_DATABASE_URL": db_url}
    created = await hodei(
        "-o", "json", "token", "create", "--name", "ops", "--role", "admin", env=db
    )
    assert created.returncode == 0, str(created)
    token = json.loads(created.stdout)["token"]
    assert token.startswith("hodei_") and json.loads(created.stdout)["role"] == "admin"
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT secret_hash FROM api_tokens").fetchone()
    assert stored is not None and token.split("_")[-1].encode() not in bytes(stored[0])

    plain = await hodei("token", "create", "--name", "w", "--role", "worker", env=db)
    assert plain.returncode == 0 and plain.stdout.startswith("hodei_"), str(plain)
    assert "shown only now" in plain.stderr
    worker_token = plain.stdout.strip()
    twice = await hodei("token", "create", "--name", "ops", "--role", "client", env=db)
    assert_one_line_error(twice, 5, "a token named 'ops' exists")
    bad = await hodei("token", "create", "--name", "x", "--role", "root", env=db)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    expiry = await hodei(
        "token", "create", "--name", "x", "--role", "client", "--expires", "9y", env=db
    )
    assert_one_line_error(expiry, 2, "invalid expiry '9y'")

    app = await start_server(auth={"mode": "required", "cache_seconds": 0.0})
    await spawn_worker(app.address, client={"token": worker_token})
    ran = await hodei(
        "--token", token, "job", "run", "--", "echo", "with a token", server=app.address
    )
    assert (ran.returncode, ran.stdout) == (0, "with a token\n"), str(ran)
    by_env = await hodei("workers", server=app.address, env={"HODEI_TOKEN": token})
    assert by_env.returncode == 0 and "READY" in by_env.stdout, str(by_env)
    anonymous = await hodei("queue", server=app.address, env={"HODEI_TOKEN": ""})
    assert_one_line_error(anonymous, 6, "not authenticated: no token")
    as_worker = await hodei("queue", server=app.address, env={"HODEI_TOKEN": worker_token})
    assert_one_line_error(as_worker, 6, "permission denied: token 'w' has role worker")

    listed = await hodei("-o", "json", "token", "list", env=db)
    # The fixture's own tokens for the server (test-admin-..., test-worker-...) aside.
    rows = {t["name"]: t for t in json.loads(listed.stdout) if not t["name"].startswith("test-")}
    assert set(rows) == {"ops", "w"} and rows["ops"]["last_used_at"] is not None
    assert all("token" not in row and "secret_hash" not in row for row in rows.values())
    table = await hodei("token", "list", env=db)
    assert table.stdout.splitlines()[0].split()[:3] == ["NAME", "ROLE", "STATUS"]
    assert token not in table.stdout

    revoked = await hodei("token", "revoke", "ops", env=db)
    assert (revoked.returncode, revoked.stdout) == (0, "token 'ops' revoked\n"), str(revoked)
    after = await hodei("--token", token, "queue", server=app.address)
    assert_one_line_error(after, 6, "token 'ops' was revoked")
    unknown = await hodei("token", "revoke", "nobody", env=db)
    assert_one_line_error(unknown, 4, "no token named 'nobody'")
