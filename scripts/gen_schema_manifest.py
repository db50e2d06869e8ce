"""Regenerate hodei/diagnose/schema_manifest.json from the shipped migrations.

Migrates a throwaway database and records every migration, table, column and index
it ends up with: what the `database.schema` check of hodei-diagnose expects. Run it
after adding or changing a migration (tests/integration/db/test_schema_manifest.py
fails until you do):

    .venv/bin/python scripts/gen_schema_manifest.py [--admin-url postgresql://...]

Without --admin-url an embedded PostgreSQL (pgserver) in a temporary directory is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from pathlib import Path

from hodei.db.databases import create_database, drop_database
from hodei.db.migrate import migrate
from hodei.diagnose.probes import probe_session
from hodei.diagnose.schema_manifest import MANIFEST, build_manifest

TARGET = Path(__file__).resolve().parent.parent / "hodei" / "diagnose" / MANIFEST


def generate(admin_url: str) -> dict[str, object]:
    name = f"hodei_manifest_{uuid.uuid4().hex[:12]}"
    url = create_database(admin_url, name)
    try:
        asyncio.run(migrate(url))
        with probe_session(url) as session:
            return build_manifest(session)
    finally:
        drop_database(admin_url, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", help="a PostgreSQL URL allowed to CREATE DATABASE")
    parser.add_argument("--output", type=Path, default=TARGET)
    args = parser.parse_args()
    if args.admin_url:
        manifest = generate(args.admin_url)
    else:
        import pgserver

        with tempfile.TemporaryDirectory(prefix="hodei-manifest-") as tmp:
            server = pgserver.get_server(tmp, cleanup_mode="stop")
            try:
                manifest = generate(server.get_uri())
            finally:
                server.cleanup()
    args.output.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", "utf-8")
    tables = manifest["tables"]
    assert isinstance(tables, dict)
    print(f"wrote {args.output}: {len(tables)} tables", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
