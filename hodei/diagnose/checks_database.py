"""Checks of the database itself: reachable, fast, and at the schema this code expects
(read-only probes from hodei/diagnose/probes.sql)."""

from __future__ import annotations

from hodei.diagnose.readings import (
    probes,
)
from hodei.diagnose.registry import CheckContext, Outcome, check
from hodei.diagnose.schema_manifest import (
    defining_migration,
    differences,
    load_manifest,
    read_tables,
)
from hodei.durations import human_age
from hodei.redaction import redact
from hodei.report.model import Status


@check(
    "database.connect",
    "PostgreSQL",
    "Database reachable and fast",
    "",
    "connects read-only and times a query round trip; WARN > db_latency_warn_s, FAIL > "
    "db_latency_fail_s; unreachable -> exit 3, named by how: refused (down), timed out, "
    "refusing connections (too many), credentials rejected",
)
def database_connect(ctx: CheckContext) -> Outcome:
    if not ctx.database_url:
        return Outcome(Status.SKIP, observed="no --database-url")
    if ctx.session is None:
        # How it failed (refused, timed out, too many connections, credentials) picks
        # the finding: each has its own sentence and hint.
        return Outcome(
            Status.FAIL,
            observed=ctx.db_error,
            finding=ctx.db_failure,
            params={"database": redact(ctx.database_url), "error": ctx.db_error},
        )
    t = ctx.thresholds
    # The query round trip is the latency; connecting (TCP, auth, fork of a backend)
    # is shown but not judged, as a loaded host makes it noisy.
    latency = ctx.session.timed_ping()
    ctx.facts["db_latency_s"] = latency
    observed = f"query {human_age(latency)} (connect {human_age(ctx.session.connect_s)})"
    threshold = f"warn > {human_age(t.db_latency_warn_s)}, fail > {human_age(t.db_latency_fail_s)}"
    status = Status.PASS
    if latency > t.db_latency_fail_s:
        status = Status.FAIL
    elif latency > t.db_latency_warn_s:
        status = Status.WARN
    return Outcome(
        status,
        observed,
        threshold,
        [f"database {redact(ctx.database_url)}"],
        finding="DATABASE_UNREACHABLE",
        params={"database": redact(ctx.database_url), "error": f"slow: {human_age(latency)}"},
    )


@check(
    "database.schema",
    "PostgreSQL",
    "Schema complete at the expected version",
    "database",
    "every migration shipped (up to expected_schema) is recorded in schema_migrations, the "
    "highest equals expected_schema, and every table, column (and its type) and index of "
    "hodei/diagnose/schema_manifest.json exists; FAIL naming what is missing",
)
def database_schema(ctx: CheckContext) -> Outcome:
    from hodei.db.migrate import available_migrations

    shipped = {m.version: m for m in available_migrations()}
    expected = ctx.thresholds.expected_schema or max(shipped, default=0)
    session = probes(ctx)
    if session.one("schema_version").get("version") is None:
        return Outcome(
            Status.FAIL,
            "no schema_migrations table",
            f"= {expected}",
            finding="SCHEMA_MISMATCH",
            params={"observed": "none", "expected": expected},
        )
    applied = {int(r["version"]) for r in session.all("schema_migrations_applied")}
    observed = max(applied, default=0)
    if observed != expected:
        return Outcome(
            Status.FAIL,
            f"version {observed}",
            f"= {expected}",
            finding="SCHEMA_MISMATCH",
            params={"observed": observed, "expected": expected},
        )
    # A row deleted below the highest: `hodei db migrate` only looks above the highest.
    missing = sorted(v for v in shipped if v <= expected and v not in applied)
    if missing:
        names = [f"{v:04d}_{shipped[v].name}" for v in missing]
        first = shipped[missing[0]]
        return Outcome(
            Status.FAIL,
            f"version {observed}, but {len(missing)} migration(s) not recorded: "
            + ", ".join(names),
            f"every migration 1..{expected} recorded",
            [f"schema_migrations lacks {n}" for n in names],
            "SCHEMA_MIGRATIONS_MISSING",
            {
                "count": len(missing),
                "missing": ", ".join(names),
                "latest": observed,
                "first_version": first.version,
                "first_name": first.name,
                "first_file": f"{names[0]}.sql",
            },
        )
    return _schema_objects(ctx, observed)


def _schema_objects(ctx: CheckContext, version: int) -> Outcome:
    """Every table, column and index the manifest expects, at the recorded version."""
    from hodei.db.migrate import available_migrations

    manifest = load_manifest()
    wanted = manifest["tables"]
    manifest_version = max((m["version"] for m in manifest["migrations"]), default=0)
    if version != manifest_version:
        # An older expected_schema (--threshold): the manifest describes another schema.
        return Outcome(
            Status.PASS,
            f"version {version}; tables not compared (the manifest is of {manifest_version})",
            f"= {version}",
        )
    diffs = differences(wanted, read_tables(probes(ctx)))
    threshold = (
        f"the {len(wanted)} tables of schema_manifest.json (migration {manifest_version}) "
        "with every column and index"
    )
    if not diffs:
        objects = sum(len(t["columns"]) + len(t["indexes"]) for t in wanted.values())
        return Outcome(
            Status.PASS,
            f"version {version}, {len(wanted)} tables, {objects} columns/indexes",
            threshold,
        )
    sources = {f"{m.version:04d}_{m.name}.sql": m.sql for m in available_migrations()}
    where = sorted({defining_migration(d, sources) for d in diffs} - {""})
    shown = [str(d) for d in diffs]
    return Outcome(
        Status.FAIL,
        f"version {version}, {len(diffs)} object(s) missing or different: "
        + ", ".join(shown[:5])
        + ("…" if len(shown) > 5 else ""),
        threshold,
        shown[:20],
        "SCHEMA_OBJECTS_MISSING",
        {
            "count": len(diffs),
            "missing": ", ".join(shown[:5]) + ("…" if len(shown) > 5 else ""),
            "sources": ", ".join(f"hodei/db/migrations/{w}" for w in where) or "the migrations",
        },
    )
