"""Checks of the database itself: reachable, fast, and at the schema this code expects
(read-only probes from hodei/diagnose/probes.sql)."""

from __future__ import annotations

from hodei.diagnose.readings import (
    probes,
)
from hodei.diagnose.registry import CheckContext, Outcome, check
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
    "Schema at the expected version",
    "database",
    "schema_migrations max(version) equals the latest migration shipped (expected_schema)",
)
def database_schema(ctx: CheckContext) -> Outcome:
    from hodei.db.migrate import latest_version

    expected = ctx.thresholds.expected_schema or latest_version()
    observed = probes(ctx).one("schema_version").get("version")
    status = Status.PASS if observed == expected else Status.FAIL
    return Outcome(
        status,
        f"version {observed}",
        f"= {expected}",
        finding="SCHEMA_MISMATCH",
        params={"observed": observed, "expected": expected},
    )
