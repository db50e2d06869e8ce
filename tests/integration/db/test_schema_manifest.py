"""hodei/diagnose/schema_manifest.json is what the shipped migrations produce.

The doctor's `database.schema` check compares a live database with the manifest; a
migration added or changed without regenerating it would make the doctor expect the
wrong schema. The message says the one command that fixes it."""

from __future__ import annotations

import pytest

from hodei.db.migrate import available_migrations
from hodei.diagnose.probes import probe_session
from hodei.diagnose.schema_manifest import REGENERATE, build_manifest, load_manifest

pytestmark = pytest.mark.integration

STALE = f"schema_manifest.json is stale: run `{REGENERATE}`"


def test_the_manifest_lists_every_shipped_migration() -> None:
    shipped = [{"version": m.version, "name": m.name} for m in available_migrations()]
    assert load_manifest()["migrations"] == shipped, STALE


def test_the_manifest_matches_a_freshly_migrated_database(db_url: str) -> None:
    with probe_session(db_url) as session:
        fresh = build_manifest(session)
    manifest = load_manifest()
    assert fresh["migrations"] == manifest["migrations"], STALE
    assert fresh["tables"] == manifest["tables"], STALE
