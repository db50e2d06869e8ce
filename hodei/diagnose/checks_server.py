"""Checks that talk to the server (gRPC), run the canary, or read process log files."""

from __future__ import annotations

import re
import socket
from typing import Any

import psycopg

from hodei.diagnose.canary import (
    CANARY_STDERR,
    CANARY_STDOUT,
    ServerProbe,
    probe_server,
    run_canary,
)
from hodei.diagnose.evidence import scan_file
from hodei.diagnose.probes import probe_session
from hodei.diagnose.registry import CheckContext, Outcome, check, skip
from hodei.durations import human_age
from hodei.errors import HodeiError
from hodei.report.model import LogScan, Status


@check(
    "server.health",
    "gRPC server",
    "Server reachable and SERVING",
    "",
    "grpc.health.v1 Check answers SERVING within rpc_timeout_s; reports the version from "
    "PlatformService.GetServerInfo. No answer -> FAIL and exit 3, told apart: refused "
    "(down), accepted but silent (frozen), or an address that is no live server's listen "
    "address while server_status shows live servers elsewhere (wrong address). Without "
    "--server, tries the live servers' listen addresses from server_status first",
)
def server_health(ctx: CheckContext) -> Outcome:
    fallback = ctx.facts.get("server_fallback")
    if not ctx.server_address and not fallback:
        return skip("no --server")
    live = live_listen_addresses(ctx)
    candidates = [ctx.server_address] if ctx.server_address else [*live, fallback]
    probes: dict[str, ServerProbe] = {}
    for address in dict.fromkeys(a for a in candidates if a):
        probes[address] = probe_server(address, ctx.thresholds.rpc_timeout_s, ctx.tls, ctx.token)
        if probes[address].reachable:
            break
    # The one that answered; else the first tried (a live server's, when there is one).
    address = next((a for a, p in probes.items() if p.reachable), next(iter(probes)))
    probe = probes[address]
    ctx.server_address = address
    where = (
        "the live servers' listen addresses in server_status, then the default"
        if ctx.snapshot is not None
        else "the default: server_status could not be read"
    )
    found = [f"no --server given: tried {', '.join(probes)} ({where})"] if fallback else []
    if not probe.reachable:
        ctx.server_unreachable = True
        ctx.server_error = probe.error
        return _unreachable(ctx, address, probe.error, live, found)
    ctx.server_info = probe.info
    evidence = found + (
        [", ".join(f"{k}={v}" for k, v in probe.info.items())] if probe.info else []
    )
    if probe.info_error:
        evidence.append(f"GetServerInfo failed: {probe.info_error}")
        ctx.facts["server_info_error"] = probe.info_error
    observed = f"{probe.status}, version {probe.info.get('version', '?')}"
    if probe.status != "SERVING":
        return Outcome(
            Status.FAIL,
            observed,
            "SERVING",
            evidence,
            "SERVER_NOT_SERVING",
            {"status": probe.status},
        )
    return Outcome(Status.PASS, observed, "SERVING", evidence)


def live_listen_addresses(ctx: CheckContext) -> list[str]:
    """Where the live servers of server_status listen (dialable: a wildcard host is
    this host), freshest heartbeat first."""
    rows = ctx.snapshot.servers if ctx.snapshot is not None else []
    live = [
        r
        for r in rows
        if r.get("stopped_at") is None
        and r.get("listen_address")
        and (r.get("heartbeat_age_s") or 0.0) <= ctx.thresholds.server_stale_s
    ]
    live.sort(key=lambda r: r.get("heartbeat_age_s") or 0.0)
    return [dialable(str(r["listen_address"])) for r in live]


def dialable(address: str) -> str:
    """'0.0.0.0:50051' -> '127.0.0.1:50051': a server listening on every interface is
    reached on this host's loopback; 'localhost' is the same host as 127.0.0.1."""
    host, sep, port = address.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]", "localhost", "[::1]", "::1"):
        host = "127.0.0.1"
    return f"{host}{sep}{port}"


def _unreachable(
    ctx: CheckContext, address: str, error: str, live: list[str], evidence: list[str]
) -> Outcome:
    """Down, frozen or the wrong address: each has its own finding and hint."""
    params = {"server": address, "error": error}
    evidence = [*evidence, f"{address}: {error}"]
    if _not_http2(error) and accepts_tcp(address, ctx.thresholds.rpc_timeout_s):
        # Something else owns the port (a database, a cache, an HTTP/1 service): "start
        # the server" would be the wrong hint, the address is what to fix.
        return Outcome(
            Status.FAIL,
            f"something listens at {address} but does not speak gRPC: {error}",
            "SERVING",
            evidence,
            "SERVER_NOT_GRPC",
            params,
        )
    if live and dialable(address) not in live:
        return Outcome(
            Status.FAIL,
            f"nothing answers at {address}; live servers listen at {', '.join(live)}",
            "SERVING",
            evidence + [f"server_status: a live server listens at {a}" for a in live],
            "SERVER_WRONG_ADDRESS",
            params | {"live": ", ".join(live)},
        )
    if "did not answer" in error and accepts_tcp(address, ctx.thresholds.rpc_timeout_s):
        # The port accepts (the kernel does that for a stopped process) but nothing
        # speaks gRPC on it: frozen (SIGSTOP), hung or starved, not down.
        return Outcome(
            Status.FAIL,
            f"accepts connections but does not answer within "
            f"{human_age(ctx.thresholds.rpc_timeout_s)}",
            "SERVING",
            evidence,
            "SERVER_FROZEN",
            params | {"timeout": human_age(ctx.thresholds.rpc_timeout_s)},
        )
    return Outcome(
        Status.FAIL, f"unreachable: {error}", "SERVING", evidence, "SERVER_UNREACHABLE", params
    )


def _not_http2(error: str) -> bool:
    """gRPC's words for a peer that accepted the connection and answered something that
    is not HTTP/2 (or closed it at once, as a non-HTTP/2 server does on our preface)."""
    return "Failed parsing HTTP/2" in error or "Socket closed" in error


def accepts_tcp(address: str, timeout_s: float) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


@check(
    "server.auth",
    "gRPC server",
    "Authentication on, and this token accepted",
    "server",
    "GetServerInfo.insecure: a server without authentication -> WARN; the token "
    "(--token, HODEI_TOKEN) refused -> FAIL",
)
def server_auth(ctx: CheckContext) -> Outcome:
    if ctx.server_unreachable:
        return skip("the server is unreachable")
    error = ctx.facts.get("server_info_error", "")
    if error.startswith(("not authenticated", "permission denied")):
        return Outcome(
            Status.FAIL,
            f"GetServerInfo refused: {error}",
            "a client or admin token",
            [error],
            "DIAGNOSE_TOKEN_REFUSED",
            {"error": error},
        )
    if ctx.server_info.get("insecure"):
        return Outcome(
            Status.WARN,
            "authentication is OFF (HODEI_INSECURE or HODEI_AUTH=off)",
            "authentication required",
            [f"server {ctx.server_address}: GetServerInfo.insecure = true"],
            "SERVER_INSECURE",
            {"server": ctx.server_address},
        )
    if not ctx.server_info:
        return skip("GetServerInfo did not answer")
    return Outcome(Status.PASS, "authentication required", "authentication required")


def _canary(ctx: CheckContext) -> Outcome | None:
    """Run the canary once (shared by the two canary checks); None when it ran."""
    if not ctx.canary:
        return skip("not requested (use --canary)")
    refused = ctx.facts.get("server_info_error", "")
    if refused.startswith(("not authenticated", "permission denied")):
        # server.auth already names the refused token; a canary that could not even be
        # submitted says nothing about jobs completing.
        return skip(f"not run: the server refused this token ({refused})")
    if "canary_no_slot" in ctx.facts:
        return _no_free_slot(ctx)
    if ctx.canary_result is None:
        # Every slot taken: the canary would only queue behind the load and time out.
        # Say so at once rather than wait it out and blame the dispatcher.
        cap = _slots_now(ctx)
        if cap is not None and cap["full"] and not cap["free_slots"]:
            ctx.facts["canary_no_slot"] = cap
            return _no_free_slot(ctx)
        ctx.canary_result = run_canary(
            str(ctx.server_address), ctx.thresholds.canary_timeout_s, ctx.tls, ctx.token
        )
    return None


def _slots_now(ctx: CheckContext) -> dict[str, Any] | None:
    """The live workers' slots and the queue depth read now, in a session of its own (the
    run's session may hold an older snapshot); None without a database."""
    if not ctx.database_url or ctx.session is None:
        return None
    try:
        with probe_session(ctx.database_url) as session:
            row = session.one("worker_capacity", {"age_s": ctx.thresholds.heartbeat_stale_s})
            depth = session.one("queue_summary").get("depth")
    except (HodeiError, psycopg.Error):
        return None  # not knowing the slots, the canary judges by its own run
    cap = {
        k: int(row.get(k) or 0)
        for k in ("ready", "busy", "full", "prefetched", "slots", "free_slots")
    }
    cap["queued"] = int(depth or 0)
    return cap


def _no_free_slot(ctx: CheckContext) -> Outcome:
    cap = ctx.facts["canary_no_slot"]
    return Outcome(
        Status.WARN,
        f"could not run: all {cap['slots']} slot(s) busy ({cap['full']} worker(s) full, "
        f"{cap['queued']} job(s) queued, {cap['prefetched']} held by workers)",
        "a free slot for the canary",
        [],
        "CANARY_NO_FREE_SLOT",
        {**cap, "server": ctx.server_address or "HOST:PORT"},
    )


@check(
    "canary.lifecycle",
    "Job execution",
    "Canary job dispatched, run and finished",
    "canary",
    "--canary: one job tagged hodei.io/test=true must reach SUCCEEDED within "
    "canary_timeout_s; reports dispatch, start and execution times",
)
def canary_lifecycle(ctx: CheckContext) -> Outcome:
    skipped = _canary(ctx)
    if skipped:
        return skipped
    r = ctx.canary_result
    if "canary_no_slot" in ctx.facts:
        return _no_free_slot(ctx)
    observed = (
        f"job {r.job_id} {r.state} exit {r.exit_code}: dispatch {human_age(r.dispatch_s)}, "
        f"start {human_age(r.start_s)}, execution {human_age(r.execution_s)}, "
        f"total {human_age(r.total_s)}"
    )
    threshold = f"SUCCEEDED within {human_age(ctx.thresholds.canary_timeout_s)}"
    evidence = [r.error] if r.error else []
    if r.state == "SUCCEEDED":
        return Outcome(Status.PASS, observed, threshold, evidence)
    if r.state in ("PENDING", "ASSIGNED"):
        cap = _slots_now(ctx)
        if cap is not None and cap["full"] and not cap["free_slots"]:
            # It queued behind a load that took every slot: capacity, not a dispatcher.
            ctx.facts["canary_no_slot"] = cap
            return _no_free_slot(ctx)
        ready = ctx.facts.get("ready_workers", 0)
        servers = ctx.facts.get("live_servers", [])
        cycle = ctx.facts.get("dispatcher_cycle_age_s")
        disabled = bool(servers) and not any(s["dispatcher_enabled"] for s in servers)
        return Outcome(
            Status.FAIL,
            observed,
            threshold,
            evidence,
            "DISPATCHER_DISABLED" if disabled else "DISPATCHER_STALLED",
            {
                "pending": 1,
                "pending_age": human_age(r.total_s),
                "ready": ready,
                "cycle_age": human_age(cycle) if cycle is not None else "ever",
                "servers": len(servers),
            },
        )
    return Outcome(
        Status.FAIL,
        observed,
        threshold,
        evidence,
        "JOBS_NOT_COMPLETING",
        {"job": r.job_id, "state": r.state, "elapsed": human_age(r.total_s)},
    )


@check(
    "canary.logs",
    "Log streaming",
    "Canary logs reach the subscriber",
    "canary",
    "--canary: the canary's stdout and stderr lines arrive on SubscribeLogs, "
    "as stdout and stderr respectively",
)
def canary_logs(ctx: CheckContext) -> Outcome:
    skipped = _canary(ctx)
    if "canary_no_slot" in ctx.facts:
        return skip("the canary could not run: no free slot (see canary.lifecycle)")
    if skipped:
        return skipped
    r = ctx.canary_result
    received = int(r.stdout_ok) + int(r.stderr_ok)
    observed = (
        f"{received}/2 expected lines, {len(r.lines)} received, first after "
        f"{human_age(r.first_log_s)}"
    )
    evidence = [f"{'stderr' if err else 'stdout'}: {line}" for err, line in r.lines[:5]]
    if received == 2:
        return Outcome(Status.PASS, observed, "stdout + stderr line", evidence)
    if r.state not in ("SUCCEEDED", "FAILED"):
        return Outcome(Status.SKIP, f"the canary did not run ({r.state})")
    return Outcome(
        Status.FAIL,
        observed,
        f"'{CANARY_STDOUT}' + '{CANARY_STDERR}'",
        evidence,
        "LOGS_NOT_STREAMED",
        {"received": received, "expected": 2},
    )


@check(
    "logs.grpc_errors",
    "Logs",
    "No gRPC protocol errors in the logs",
    "logs",
    "--server-log/--worker-log files: an HTTP/2 protocol error (h2 protocol error, "
    "GOAWAY too_many_pings, RST_STREAM...) -> FAIL; a stream ended by its peer going away "
    "and the reconnects after it (UNAVAILABLE, connection refused: a server restart) are "
    "counted, no finding; other ERROR lines -> WARN",
)
def logs_grpc_errors(ctx: CheckContext) -> Outcome:
    files = [("server", p) for p in ctx.server_logs] + [("worker", p) for p in ctx.worker_logs]
    if not files:
        return skip("no --server-log/--worker-log given")
    scans: list[LogScan] = []
    evidence: list[str] = []
    for role, path in files:
        try:
            scans.append(scan_file(f"{role}:{path.name}", path))
        except OSError as exc:
            evidence.append(f"cannot read {path}: {exc.strerror}")
    ctx.facts["log_scans"] = scans
    grpc_errors = [(s.source, e) for s in scans for e in _kept(s.grpc_errors)]
    errors = [(s.source, e) for s in scans for e in _kept(s.error_lines)]
    protocol = sum(_counted(s.grpc_errors) for s in scans)
    reconnects = sum(_counted(s.reconnect_lines) for s in scans)
    total = sum(s.total_lines for s in scans)
    observed = (
        f"{protocol} gRPC protocol error(s), {reconnects} reconnect line(s), "
        f"{sum(_counted(s.error_lines) for s in scans)} ERROR line(s) in {total} lines of "
        f"{len(scans)} file(s)"
    )
    evidence += [f"{src}: {line}" for src, line in (grpc_errors + errors)[:8]]
    if reconnects:
        # A peer went away and the stream was re-made: shown, never a finding (and no
        # keepalive advice); a worker that stays away is the workers.* checks' finding.
        evidence.append(
            f"{reconnects} reconnect line(s): a peer went away (e.g. a server restart) and "
            "the stream was made again; not a protocol error"
        )
        shown = [(s.source, line) for s in scans for line in _kept(s.reconnect_lines)]
        evidence += [f"{src}: {line}" for src, line in shown[:4]]
    if grpc_errors:
        sources = sorted({src for src, _ in grpc_errors})
        return Outcome(
            Status.FAIL,
            observed,
            "0 gRPC protocol errors",
            evidence,
            "GRPC_STREAM_ERRORS",
            {
                "count": protocol,
                "sources": ", ".join(sources),
                "sample": grpc_errors[0][1][-120:],
            },
        )
    if errors or len(scans) < len(files):
        return Outcome(Status.WARN, observed, "0 ERROR lines", evidence)
    return Outcome(Status.PASS, observed, "0 gRPC protocol errors", evidence)


def _kept(lines: list[str]) -> list[str]:
    """A scan's sample without its "... and N more" line."""
    return [line for line in lines if not _MORE.fullmatch(line)]


def _counted(lines: list[str]) -> int:
    """How many lines a scan found: its sample plus the N of "... and N more"."""
    more = _MORE.fullmatch(lines[-1]) if lines else None
    return len(_kept(lines)) + (int(more.group(1)) if more else 0)


_MORE = re.compile(r"\.\.\. and (\d+) more")
