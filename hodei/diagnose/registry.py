"""What a diagnostic check is, what it sees, and the thresholds it compares with.

`Outcome` and `skip` live in `outcome.py` (re-exported here for the checks), so that
`failures.py` can build outcomes without importing this module."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hodei.broker_settings import BrokerSettings
from hodei.diagnose.failures import outcome_for
from hodei.diagnose.outcome import Outcome, skip
from hodei.diagnose.probes import ProbeSession
from hodei.errors import first_line
from hodei.report.catalogue import fill, finding_text
from hodei.report.model import CheckResult, DatabaseSnapshot, Status
from hodei.tls import ClientTLS


@dataclass
class Thresholds:
    """Every limit a check compares with; each is a `--threshold NAME=VALUE` option."""

    db_latency_warn_s: float = 0.5
    db_latency_fail_s: float = 1.5
    expected_schema: int = 0  # 0: the latest migration shipped with this Hodei
    heartbeat_stale_s: float = 20.0  # 3 missed 5 s heartbeats + margin
    lost_window_s: float = 900.0  # a worker LOST this recently is reported
    lock_wait_s: float = 1.0  # a Hodei session waiting on a lock this long is blocked
    long_xact_s: float = 60.0  # a transaction open this long on Hodei tables: lingering
    idle_xact_s: float = 10.0  # idle in transaction this long on Hodei tables: lingering
    pending_age_s: float = 30.0  # PENDING longer than this with READY workers: stalled
    dispatcher_cycle_s: float = 15.0  # no cycle for this long counts as "no cycle"
    server_stale_s: float = 30.0  # server_status heartbeat older: the server is gone
    ack_grace_s: float = 5.0
    ack_timeout_s: float = 10.0  # when a job row has no ack_deadline
    running_grace_s: float = 30.0
    queue_depth_warn: int = 1000
    queue_age_warn_s: float = 60.0
    queue_window_s: float = 60.0  # a queue judged growing: more entered than left in this
    outbox_age_warn_s: float = 10.0
    outbox_age_fail_s: float = 60.0
    activity_window_s: float = 600.0
    consistency_grace_s: float = 2.0
    throughput_minutes: int = 5
    throughput_min_per_min: float = 1.0  # WARN below this while jobs wait
    canary_timeout_s: float = 30.0
    clock_tolerance_s: float = 2.0  # a recorded time this far ahead of the database: FAIL
    timestamp_window_s: float = 86400.0  # jobs created this recently have their order checked
    rpc_timeout_s: float = 1.5
    stream_closed_grace_s: float = 1.0  # a worker owning jobs without a stream this long
    clock_skew_s: float = 2.0  # |worker clock - database clock| above this warns
    output_window_s: float = 900.0  # finished attempts this recent are checked for lost output
    repair_window_s: float = 3600.0  # repairs this recent are reported
    metrics_timeout_s: float = 2.0  # a --metrics-url that does not answer within this
    pool_confirm_s: float = 1.0  # a pool queue seen twice this far apart is starved
    reconnects_min: int = 3  # fewer worker reconnects than this are never a pattern
    reconnects_per_hour: float = 6.0  # more per hour of uptime: the stream keeps breaking
    nats_timeout_s: float = 2.0  # NATS (--nats-url) answers within this
    nats_consumer_lag: int = 1000  # more messages pending for a --nats-consumer: behind
    provision_register_s: float = 120.0  # a provisioned worker not registered after this

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def with_overrides(self, pairs: list[str]) -> Thresholds:
        """Apply NAME=VALUE strings; ValueError with a one-line message on a bad one."""
        values: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(self)}
        for pair in pairs:
            name, sep, raw = pair.partition("=")
            name = name.strip().replace("-", "_")
            if not sep and name in types:
                raise ValueError(f"threshold {name} needs a value: --threshold {name}=NUMBER")
            if not sep or name not in types:
                raise ValueError(f"unknown threshold {pair!r}; known: {', '.join(self.names())}")
            try:
                number = float(raw)
            except ValueError:
                raise ValueError(f"threshold {name} needs a number, got {raw!r}") from None
            if number < 0:
                raise ValueError(f"threshold {name} must be >= 0, got {raw}")
            values[name] = int(number) if types[name] in ("int", int) else number
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(values)
        return Thresholds(**current)


@dataclass
class CheckContext:
    """Everything the checks share: targets, thresholds and what was observed so far."""

    database_url: str | None
    server_address: str | None
    thresholds: Thresholds
    canary: bool = False
    tls: ClientTLS | None = None  # how to dial the server; None: plaintext
    #: Sent to the server (least role: client; the canary submits and follows its job).
    token: str = ""
    server_logs: list[Path] = field(default_factory=list)
    worker_logs: list[Path] = field(default_factory=list)
    #: Prometheus endpoints of servers and workers (--metrics-url).
    metrics_urls: list[str] = field(default_factory=list)
    #: The NATS of the events (--nats-url, --nats-stream); None: not configured.
    nats: BrokerSettings | None = None
    #: Durable consumers whose lag is checked (--nats-consumer).
    nats_consumers: list[str] = field(default_factory=list)
    session: ProbeSession | None = None
    db_error: str = ""
    #: How connecting failed (hodei.diagnose.probes.connect_failure_code).
    db_failure: str = "DATABASE_UNREACHABLE"
    db_unreachable: bool = False
    snapshot: DatabaseSnapshot | None = None
    server_unreachable: bool = False
    server_error: str = ""
    server_info: dict[str, Any] = field(default_factory=dict)
    canary_result: Any = None  # hodei.diagnose.canary.CanaryResult
    facts: dict[str, Any] = field(default_factory=dict)  # shared between checks


CheckFn = Callable[[CheckContext], Outcome]


@dataclass(frozen=True)
class Check:
    id: str
    component: str
    title: str
    fn: CheckFn
    needs: str  # "database" | "server" | "canary" | "logs" | "metrics" | "nats" | ""
    describe: str  # what it checks and against which thresholds (for --list-checks, docs)


REGISTRY: list[Check] = []


def check(
    id: str, component: str, title: str, needs: str, describe: str
) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        REGISTRY.append(Check(id, component, title, fn, needs, describe))
        return fn

    return register


def run_check(chk: Check, ctx: CheckContext, debug_commands: list[str]) -> CheckResult:
    """Run one check; an unexpected error becomes a FAIL of that check, never a traceback."""
    start = time.perf_counter()
    if chk.needs == "database" and ctx.session is None:
        outcome = skip("database unreachable" if ctx.db_unreachable else "no --database-url")
    elif chk.needs in ("server", "canary") and (ctx.server_unreachable or not ctx.server_address):
        outcome = skip("server unreachable" if ctx.server_unreachable else "no --server")
    elif chk.needs == "metrics" and not ctx.metrics_urls:
        outcome = skip("no --metrics-url")
    elif chk.needs == "nats" and ctx.nats is None:
        outcome = skip("no --nats-url")
    else:
        try:
            outcome = chk.fn(ctx)
        except Exception as exc:  # a broken probe must not hide the others
            explained = outcome_for(exc, ctx.session)
            if explained is None:
                first = first_line(exc)
                explained = Outcome(Status.FAIL, observed=f"check could not run: {first}")
            outcome = explained
    result = CheckResult(
        id=chk.id,
        component=chk.component,
        status=outcome.status,
        title=chk.title,
        observed=outcome.observed,
        threshold=outcome.threshold,
        duration_s=round(time.perf_counter() - start, 4),
        evidence=outcome.evidence,
        finding=outcome.finding if outcome.status in (Status.WARN, Status.FAIL) else "",
        params=outcome.params,
    )
    if result.finding:
        text = finding_text(result.finding, "en")
        result.causes = list(text.causes)
        result.remediation = [fill(a.text, outcome.params) for a in text.actions]
        result.debug_commands = debug_commands
    return result
