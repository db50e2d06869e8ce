"""Checks that read the processes' own Prometheus metrics (`--metrics-url`, repeatable):
what only a process knows about itself. The database shows what was written; a
server's metrics show what it cannot write (its database connection, its pools, the
calls it failed) and a worker's show how often its stream broke.

Counters are cumulative since the process started, so a judgement on a counter divides
by the process's uptime (process_start_time_seconds) rather than alarming on a total a
long-lived process gathers slowly."""

from __future__ import annotations

import time

from hodei.diagnose.metrics_source import Scrape, scrape
from hodei.diagnose.registry import CheckContext, Outcome, check
from hodei.durations import human_age
from hodei.report.model import Status

#: gRPC codes that mean the server itself failed, not the caller or the load.
_SERVER_FAULT_CODES = ("INTERNAL", "UNKNOWN", "DATA_LOSS")


def scrapes(ctx: CheckContext) -> list[Scrape]:
    """One scrape of each --metrics-url, taken once per run and shared by the checks."""
    taken = ctx.facts.get("metrics_scrapes")
    if taken is None:
        taken = [scrape(url, ctx.thresholds.metrics_timeout_s) for url in ctx.metrics_urls]
        ctx.facts["metrics_scrapes"] = taken
    return list(taken)


def _of(ctx: CheckContext, component: str) -> list[Scrape]:
    return [s for s in scrapes(ctx) if s.ok and s.component == component]


@check(
    "metrics.endpoints",
    "Metrics",
    "Metrics endpoints answer",
    "metrics",
    "each --metrics-url answers with Hodei's Prometheus metrics (hodei_build_info) "
    "within metrics_timeout_s; unreachable or not Hodei's -> WARN",
)
def metrics_endpoints(ctx: CheckContext) -> Outcome:
    taken = scrapes(ctx)
    bad = [s for s in taken if not s.ok]
    good = [s for s in taken if s.ok]
    evidence = [
        f"{s.url}: {s.component or 'unknown component'} {s.version}, {len(s.samples)} samples"
        for s in good
    ] + [f"{s.url}: {s.problem}" for s in bad]
    if not bad:
        return Outcome(
            Status.PASS,
            f"{len(good)} endpoint(s) answered: "
            + ", ".join(f"{s.component or '?'} at {s.url}" for s in good),
            evidence=evidence,
        )
    first = bad[0]
    return Outcome(
        Status.WARN,
        f"{len(bad)} of {len(taken)} endpoint(s) unusable: {first.url}: {first.problem}",
        f"every endpoint answers within {human_age(ctx.thresholds.metrics_timeout_s)}",
        evidence,
        first.finding,
        {"url": first.url, "problem": first.problem, "count": len(bad)},
    )


@check(
    "metrics.server_database",
    "gRPC server",
    "Each server reaches its database",
    "metrics",
    "a server whose hodei_database_up is 0 cannot reach its database (its calls fail "
    "UNAVAILABLE, its loops wait) -> FAIL, saying whether the doctor itself reaches it",
)
def metrics_server_database(ctx: CheckContext) -> Outcome:
    servers = _of(ctx, "server")
    if not servers:
        return Outcome(Status.SKIP, "no server metrics read (give the server's --metrics-url)")
    down = [s for s in servers if s.value("hodei_database_up", 1.0) == 0]
    if not down:
        return Outcome(
            Status.PASS,
            f"{len(servers)} server(s) report their database up",
            "hodei_database_up = 1",
        )
    if ctx.session is not None:
        doctor = "the doctor reaches the same database: the fault is on the server's side"
    elif ctx.db_unreachable:
        doctor = f"the doctor cannot reach it either: {ctx.db_error}"
    else:
        doctor = "no --database-url given to compare with"
    return Outcome(
        Status.FAIL,
        f"{len(down)} of {len(servers)} server(s) report their database unreachable",
        "hodei_database_up = 1",
        [f"{s.url}: hodei_database_up = 0" for s in down] + [doctor],
        "SERVER_DATABASE_UNREACHABLE",
        {"url": down[0].url, "count": len(down), "doctor": doctor},
    )


def _waiting_pools(s: Scrape) -> dict[str, float]:
    return {
        sample.labels.get("pool", "?"): sample.value
        for sample in s.named("hodei_db_pool_requests_waiting")
        if sample.value > 0
    }


@check(
    "metrics.db_pools",
    "gRPC server",
    "No database pool starved",
    "metrics",
    "a server pool with requests waiting for a connection in two scrapes "
    "pool_confirm_s apart (a momentary queue under load is not a fault) -> WARN, "
    "naming the pool, its waiters and its connections in use",
)
def metrics_db_pools(ctx: CheckContext) -> Outcome:
    servers = _of(ctx, "server")
    if not servers:
        return Outcome(Status.SKIP, "no server metrics read (give the server's --metrics-url)")
    # A server cut off from its database queues every request on its pools: that is
    # metrics.server_database's finding, not a pool too small.
    servers = [s for s in servers if s.value("hodei_database_up", 1.0) != 0]
    if not servers:
        return Outcome(Status.SKIP, "every server reports its database unreachable")
    suspects = [(s, _waiting_pools(s)) for s in servers]
    suspects = [(s, pools) for s, pools in suspects if pools]
    starved: list[str] = []
    if suspects:
        time.sleep(ctx.thresholds.pool_confirm_s)
        for first, pools in suspects:
            again = scrape(first.url, ctx.thresholds.metrics_timeout_s)
            still = _waiting_pools(again) if again.ok else {}
            for pool in sorted(set(pools) & set(still)):
                in_use = again.total("hodei_db_pool_connections", pool=pool, state="in_use")
                starved.append(
                    f"{first.url}: pool {pool}: {still[pool]:g} request(s) waiting, "
                    f"{in_use:g} connection(s) in use"
                )
    if not starved:
        return Outcome(
            Status.PASS,
            f"0 pools with waiting requests on {len(servers)} server(s)",
            f"no waiter in two scrapes {human_age(ctx.thresholds.pool_confirm_s)} apart",
        )
    return Outcome(
        Status.WARN,
        f"{len(starved)} pool(s) with requests waiting for a connection",
        "0 waiting",
        starved,
        "DB_POOL_STARVED",
        {"pools": "; ".join(starved[:2]), "count": len(starved)},
    )


@check(
    "metrics.grpc_errors",
    "gRPC server",
    "No call ended in a server fault",
    "metrics",
    "hodei_grpc_server_handled_total with grpc_code INTERNAL, UNKNOWN or DATA_LOSS "
    "(the server failed, not the caller) -> WARN, naming the methods and counts",
)
def metrics_grpc_errors(ctx: CheckContext) -> Outcome:
    servers = _of(ctx, "server")
    if not servers:
        return Outcome(Status.SKIP, "no server metrics read (give the server's --metrics-url)")
    faults: dict[tuple[str, str, str], float] = {}
    total = 0.0
    for s in servers:
        for sample in s.named("hodei_grpc_server_handled_total"):
            total += sample.value
            code = sample.labels.get("grpc_code", "")
            if code in _SERVER_FAULT_CODES and sample.value > 0:
                key = (s.url, sample.labels.get("grpc_method", "?"), code)
                faults[key] = faults.get(key, 0.0) + sample.value
    if not faults:
        return Outcome(
            Status.PASS,
            f"0 of {total:g} call(s) ended INTERNAL, UNKNOWN or DATA_LOSS",
            "0 server faults",
        )
    lines = [f"{url}: {method} -> {code} x{n:g}" for (url, method, code), n in faults.items()]
    count = sum(faults.values())
    return Outcome(
        Status.WARN,
        f"{count:g} of {total:g} call(s) ended in a server fault since the servers started",
        "0 server faults",
        lines,
        "GRPC_SERVER_FAULTS",
        {"count": f"{count:g}", "calls": "; ".join(lines[:2])},
    )


@check(
    "metrics.worker_reconnects",
    "Workers",
    "Worker streams stay up",
    "metrics",
    "a worker that re-opened its stream at least reconnects_min times and more than "
    "reconnects_per_hour per hour of uptime (the seed's `h2 protocol error` every 30 s "
    "is 120 an hour) -> WARN, naming the worker and its rate",
)
def metrics_worker_reconnects(ctx: CheckContext) -> Outcome:
    workers = _of(ctx, "worker")
    if not workers:
        return Outcome(Status.SKIP, "no worker metrics read (give each worker's --metrics-url)")
    t = ctx.thresholds
    flapping: list[str] = []
    evidence: list[str] = []
    for s in workers:
        reconnects = s.total("hodei_worker_reconnects_total")
        started = s.value("process_start_time_seconds")
        if started is None or started <= 0:
            evidence.append(f"{s.url}: {reconnects:g} reconnect(s), uptime unknown")
            continue
        uptime_h = max((s.taken_at or time.time()) - started, 1.0) / 3600
        rate = reconnects / uptime_h
        line = (
            f"{s.url}: {reconnects:g} reconnect(s) in {human_age(uptime_h * 3600)} ({rate:.1f}/h)"
        )
        evidence.append(line)
        if reconnects >= t.reconnects_min and rate > t.reconnects_per_hour:
            flapping.append(line)
    if not flapping:
        return Outcome(
            Status.PASS,
            f"{len(workers)} worker(s), none reconnecting more than {t.reconnects_per_hour:g}/h",
            f">= {t.reconnects_min} and > {t.reconnects_per_hour:g}/h",
            evidence,
        )
    return Outcome(
        Status.WARN,
        f"{len(flapping)} of {len(workers)} worker(s) keep losing their stream",
        f"<= {t.reconnects_per_hour:g} reconnects/h",
        flapping,
        "WORKER_STREAM_FLAPPING",
        {"workers": "; ".join(flapping[:2]), "count": len(flapping)},
    )
