"""The schema the shipped migrations create, and how a database differs from it.

`schema_manifest.json` (next to this module) lists every migration and every table,
column (with its type) and index that a fresh `hodei db migrate` produces. It is
generated, never written by hand:

    .venv/bin/python scripts/gen_schema_manifest.py

which migrates a throwaway database and reads it back with the same probes the
`database.schema` check uses; tests/integration/db/test_schema_manifest.py fails when a
migration was added or changed without regenerating it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from hodei.diagnose.probes import ProbeSession

MANIFEST = "schema_manifest.json"
REGENERATE = ".venv/bin/python scripts/gen_schema_manifest.py"

#: table -> {"columns": {column: type}, "indexes": [name, ...]}
Tables = dict[str, dict[str, Any]]


def read_tables(session: ProbeSession) -> Tables:
    """The tables, columns and indexes of the database `session` reads."""
    tables: Tables = {}
    for r in session.all("schema_columns"):
        entry = tables.setdefault(r["table_name"], {"columns": {}, "indexes": []})
        entry["columns"][r["column_name"]] = r["data_type"]
    for r in session.all("schema_indexes"):
        tables.setdefault(r["table_name"], {"columns": {}, "indexes": []})["indexes"].append(
            r["index_name"]
        )
    return tables


def build_manifest(session: ProbeSession) -> dict[str, Any]:
    """What a freshly migrated database holds, as the manifest records it."""
    migrations = [
        {"version": int(r["version"]), "name": r["name"]}
        for r in session.all("schema_migrations_applied")
    ]
    # schema_migrations itself is made by the migrator, not by a migration file.
    return {"migrations": migrations, "tables": read_tables(session)}


@cache
def load_manifest() -> dict[str, Any]:
    text = resources.files("hodei.diagnose").joinpath(MANIFEST).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass(frozen=True)
class Difference:
    kind: str  # "table" | "column" | "index"
    name: str  # "jobs", "jobs.labels", "jobs_created_at_idx"
    detail: str  # "missing", "is text, expected jsonb"
    table: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name} {self.detail}"


def differences(expected: Tables, actual: Tables) -> list[Difference]:
    """What the manifest has that the database lacks or holds differently; objects the
    database adds (an operator's own index) are not differences."""
    out: list[Difference] = []
    for table, want in expected.items():
        have = actual.get(table)
        if have is None:
            out.append(Difference("table", table, "missing", table))
            continue
        for column, kind in want["columns"].items():
            found = have["columns"].get(column)
            if found is None:
                out.append(Difference("column", f"{table}.{column}", "missing", table))
            elif found != kind:
                out.append(
                    Difference("column", f"{table}.{column}", f"is {found}, expected {kind}", table)
                )
        for index in want["indexes"]:
            if index not in have["indexes"]:
                out.append(Difference("index", index, "missing", table))
    return out


def defining_migration(diff: Difference, sources: dict[str, str]) -> str:
    """The last migration file whose SQL names the object (where to recreate it from)."""
    name = diff.name.split(".")[-1]
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    table = re.compile(rf"\b{re.escape(diff.table)}\b")
    found = ""
    for file, sql in sources.items():
        if pattern.search(sql) and table.search(sql):
            found = file
    return found
