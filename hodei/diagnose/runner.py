"""Run the checks against one deployment and build the diagnose Report."""

from __future__ import annotations

import contextlib
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from hodei.broker_settings import BrokerSettings
from hodei.diagnose import (  # noqa: F401  (importing a module registers its checks)
    checks_attempts,
    checks_database,
    checks_events,
    checks_jobs,
    checks_metrics,
    checks_nats,
    checks_providers,
    checks_server,
    checks_sessions,
    checks_time,
    checks_workers,
)
from hodei.diagnose.probes import (
    DatabaseConnectFailed,
    ProbeFailed,
    SnapshotFailure,
    SnapshotParts,
    probe_session,
)
from hodei.diagnose.registry import REGISTRY, Check, CheckContext, Thresholds, run_check
from hodei.errors import Unavailable
from hodei.report.debug_commands import debug_commands
from hodei.report.diagnose_report import build_diagnose_report
from hodei.report.model import Report, Status
from hodei.tls import ClientTLS

#: Run order: reachability first, then what later checks reuse (ready workers, queue
#: depth, live servers), the canary after the dispatcher's verdict, log files last.
ORDER = [
    "database.connect",
    "database.snapshot",
    "server.health",
    "server.auth",
    "metrics.endpoints",
    "metrics.server_database",
    "metrics.db_pools",
    "metrics.grpc_errors",
    "database.schema",
    "database.sessions",
    "workers.ready",
    "workers.heartbeat",
    "workers.busy_without_job",
    "workers.stream",
    "workers.clock",
    "queue.backlog",
    "dispatcher.progress",
    "jobs.assigned_unacked",
    "jobs.running_stuck",
    "consistency.pending_unqueued",
    "consistency.queue_not_pending",
    "queue.repairs",
    "attempts.output",
    "time.heartbeats",
    "time.server_clock",
    "time.job_order",
    "metrics.worker_reconnects",
    "events.flow",
    "outbox.flow",
    "outbox.backlog",
    "nats.reachable",
    "nats.stream",
    "nats.consumer_lag",
    "nats.dead_letters",
    "providers.reachable",
    "providers.provisioning",
    "providers.registration",
    "throughput.recent",
    "canary.lifecycle",
    "canary.logs",
    "logs.grpc_errors",
]


def all_checks() -> list[Check]:
    by_id = {c.id: c for c in REGISTRY}
    missing = set(by_id) - set(ORDER)
    assert not missing, f"checks not in ORDER: {missing}"
    return [by_id[i] for i in ORDER]


def select_checks(only: list[str], skip: list[str]) -> list[Check]:
    """Checks selected by id or id prefix (`--only workers` runs every workers.* check)."""
    checks = all_checks()

    def match(c: Check, pats: list[str]) -> bool:
        return any(c.id == p or c.id.startswith(p.rstrip(".") + ".") for p in pats)

    unknown = [p for p in only + skip if not any(match(c, [p]) for c in checks)]
    if unknown:
        raise ValueError(f"unknown check id {unknown[0]!r}; see --list-checks")
    if only:
        checks = [c for c in checks if match(c, only)]
    return [c for c in checks if not match(c, skip)]


@dataclass
class DiagnoseResult:
    report: Report
    unreachable: bool  # a target given on the command line did not answer
    duration_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.unreachable:
            return 3
        statuses = {c.status for c in self.report.checks}
        if Status.FAIL in statuses:
            return 2
        return 1 if Status.WARN in statuses else 0


def diagnose(
    database_url: str | None,
    server_address: str | None,
    *,
    thresholds: Thresholds | None = None,
    canary: bool = False,
    tls: ClientTLS | None = None,
    server_logs: list[Path] | None = None,
    worker_logs: list[Path] | None = None,
    metrics_urls: list[str] | None = None,
    nats: BrokerSettings | None = None,
    nats_consumers: list[str] | None = None,
    only: list[str] | None = None,
    skip: list[str] | None = None,
    token: str = "",
    server_fallback: str | None = None,
) -> DiagnoseResult:
    """`server_address` None with `server_fallback`: find a live server from the listen
    addresses in server_status, else try `server_fallback` (the default address)."""
    start = time.perf_counter()
    ctx = CheckContext(
        database_url=database_url,
        server_address=server_address,
        thresholds=thresholds or Thresholds(),
        canary=canary,
        tls=tls,
        token=token,
        server_logs=server_logs or [],
        worker_logs=worker_logs or [],
        metrics_urls=metrics_urls or [],
        nats=nats,
        nats_consumers=nats_consumers or [],
    )
    if server_address is None and server_fallback:
        ctx.facts["server_fallback"] = server_fallback
    selected = select_checks(only or [], skip or [])
    log_paths = [str(p) for p in ctx.server_logs + ctx.worker_logs]
    commands = debug_commands(database_url, server_address or server_fallback, log_paths)
    results = []
    events: list[dict[str, object]] | None = None
    with ExitStack() as stack:
        # The database checks read one snapshot; it ends before the canary and the log
        # scans, which wait on other things while its read locks would stay held.
        consistent = ExitStack()
        if database_url:
            try:
                ctx.session = stack.enter_context(probe_session(database_url))
            except DatabaseConnectFailed as exc:
                ctx.db_unreachable, ctx.db_error, ctx.db_failure = True, exc.reason, exc.finding
            except Unavailable as exc:
                ctx.db_unreachable, ctx.db_error = True, str(exc)
        if ctx.session is not None:
            stack.callback(consistent.close)
            _take_snapshot(ctx, consistent)
        for chk in selected:
            if chk.needs in ("canary", "logs"):
                consistent.close()
            results.append(run_check(chk, ctx, commands))
        consistent.close()
        if ctx.session is not None and ctx.canary_result is not None and ctx.canary_result.job_id:
            with contextlib.suppress(ProbeFailed):
                events = ctx.session.all(
                    "job_events", {"ids": [ctx.canary_result.job_id], "limit": 50}
                )
    elapsed = time.perf_counter() - start
    report = build_diagnose_report(
        checks=results,
        snapshot=ctx.snapshot,
        database_url=database_url,
        server_address=ctx.server_address,
        log_scans=ctx.facts.get("log_scans", []),
        canary=ctx.canary_result,
        events=events,
        server_info=ctx.server_info,
        log_paths=log_paths,
        duration_s=elapsed,
        job_times=ctx.facts.get("recent_job_times", []),
        job_times_minutes=int(ctx.thresholds.throughput_minutes),
    )
    return DiagnoseResult(report, ctx.db_unreachable or ctx.server_unreachable, elapsed)


def _take_snapshot(ctx: CheckContext, consistent: ExitStack) -> None:
    """Open the run's REPEATABLE READ snapshot and read the report's figures from it;
    each part that fails is noted for database.snapshot, never raised."""
    assert ctx.session is not None
    parts = SnapshotParts()
    ctx.facts["snapshot_parts"] = parts
    try:
        consistent.enter_context(ctx.session.consistent())
        ctx.snapshot = ctx.session.snapshot(parts=parts)
    except ProbeFailed as exc:
        parts.failures.append(SnapshotFailure("snapshot", exc))
    except psycopg.Error as exc:
        parts.failures.append(SnapshotFailure("snapshot", ProbeFailed("BEGIN", "", exc)))
