"""`hodei db reseal-secrets [--dry-run]` as a real process against a test database: the
last step of a secret-key rotation (docs/server.md, "Rotating the secret key")."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from cryptography.fernet import Fernet

from hodei.server.secret_box import SecretBox
from tests.integration.cli_process import assert_one_line_error, hodei

pytestmark = pytest.mark.integration

OLD, NEW, LOST = (Fernet.generate_key().decode() for _ in range(3))
VALUE = "rotate-me-0a1b2c3d"
ROTATING = {"HODEI_SECRET_KEY": NEW, "HODEI_PREVIOUS_SECRET_KEYS": OLD}


def add_jobs(db_url: str) -> dict[str, uuid.UUID]:
    """Two jobs sealed under the old key, one under the new, one under a key nobody
    has any more, one without secret env."""
    ids = {name: uuid.uuid4() for name in ("old1", "old2", "new", "lost", "plain")}
    sealed = {
        "old1": SecretBox(OLD).seal({"TOKEN": VALUE}),
        "old2": SecretBox(OLD).seal({"TOKEN": VALUE, "OTHER": "x" * 8}),
        "new": SecretBox(NEW).seal({"TOKEN": VALUE}),
        "lost": SecretBox(LOST).seal({"TOKEN": VALUE}),
        "plain": None,
    }
    with psycopg.connect(db_url) as conn:
        for name, job_id in ids.items():
            conn.execute(
                "INSERT INTO jobs (id, command, secret_names, secret_env) "
                "VALUES (%s, '{true}', %s, %s)",
                (job_id, [] if sealed[name] is None else ["TOKEN"], sealed[name]),
            )
    return ids


def tokens(db_url: str) -> dict[uuid.UUID, bytes | None]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT id, secret_env FROM jobs").fetchall()
    return {row[0]: None if row[1] is None else bytes(row[1]) for row in rows}


def no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in (VALUE, OLD, NEW, LOST):
            assert secret not in text


async def test_a_rotation_moves_every_readable_job_to_the_new_key(db_url: str) -> None:
    ids = add_jobs(db_url)
    before = tokens(db_url)

    dry = await hodei("db", "reseal-secrets", "--dry-run", "--database-url", db_url, env=ROTATING)

    assert_one_line_error(dry, 5, "1 job(s) hold a secret env that neither HODEI_SECRET_KEY")
    assert str(ids["lost"]) in dry.stderr
    assert dry.stdout.strip() == (
        "would reseal 2 job(s) under the current key; 1 already under it "
        "(keys: HODEI_SECRET_KEY and 1 from HODEI_PREVIOUS_SECRET_KEYS)"
    )
    assert tokens(db_url) == before  # a dry run writes nothing

    done = await hodei("db", "reseal-secrets", "--database-url", db_url, env=ROTATING)

    assert_one_line_error(done, 5, f"left as they are: {ids['lost']}")
    assert done.stdout.startswith("resealed 2 job(s) under the current key; 1 already under it")
    no_secret_in(dry.stdout, dry.stderr, done.stdout, done.stderr)
    after = tokens(db_url)
    # The new key alone now opens every job the old one made, to the same values.
    only_new = SecretBox(NEW)
    assert only_new.open(after[ids["old1"]]) == {"TOKEN": VALUE}
    assert only_new.open(after[ids["old2"]]) == {"TOKEN": VALUE, "OTHER": "x" * 8}
    for unchanged in ("new", "lost", "plain"):
        assert after[ids[unchanged]] == before[ids[unchanged]]

    # Once the unreadable job is gone, a second run has nothing to do and exits 0.
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM jobs WHERE id = %s", (ids["lost"],))
    again = await hodei(
        "-o",
        "json",
        "db",
        "reseal-secrets",
        "--database-url",
        db_url,
        env={"HODEI_SECRET_KEY": NEW},
    )
    assert again.returncode == 0, str(again)
    assert json.loads(again.stdout) == {
        "resealed": 0,
        "current": 3,
        "unreadable": [],
        "dry_run": False,
        "previous_keys": 0,
    }


async def test_without_a_current_key_it_refuses_in_one_line(db_url: str) -> None:
    add_jobs(db_url)
    before = tokens(db_url)

    no_key = await hodei("db", "reseal-secrets", "--database-url", db_url)
    assert_one_line_error(no_key, 2, "reseal-secrets needs HODEI_SECRET_KEY")

    only_previous = await hodei(
        "db",
        "reseal-secrets",
        "--database-url",
        db_url,
        env={"HODEI_PREVIOUS_SECRET_KEYS": OLD},
    )
    assert_one_line_error(
        only_previous, 2, "invalid settings: HODEI_PREVIOUS_SECRET_KEYS needs HODEI_SECRET_KEY"
    )

    bad_previous = await hodei(
        "db",
        "reseal-secrets",
        "--database-url",
        db_url,
        env={"HODEI_SECRET_KEY": NEW, "HODEI_PREVIOUS_SECRET_KEYS": f"{OLD},hunter2-not-a-key"},
    )
    assert_one_line_error(bad_previous, 2, "key 2 of 2 is not a Fernet key")
    no_secret_in(no_key.stderr, only_previous.stderr, bad_previous.stderr)
    assert "hunter2" not in bad_previous.stderr
    assert tokens(db_url) == before
