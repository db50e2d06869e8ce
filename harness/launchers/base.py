"""What every launcher shares: the interface, the deployment it returns, the run
settings, and the probes and helpers more than one launcher uses.

Every launcher module imports from here and from nothing beside it, so that the
launchers never import each other (harness.launchers.select imports them all).
"""

from __future__ import annotations

import abc
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from harness.tables import read_only_connection
from harness.waits import wait_for
from hodei.settings import TlsSettings, environment_for
from hodei.tls import ClientTLS, client_tls, sync_channel

#: The ways to get a platform, declared once (`--launcher`, `hodei e2e --launcher`).
LAUNCHERS = ("local", "live", "containers")

#: Short intervals so that the whole feature suite runs in well under 90 s:
#: dead workers are noticed in 1.5 s, keepalive pings every second (the idle-stream
#: scenario watches several periods), the dispatcher backstop polls 5x a second.
#: Every launcher that starts the platform itself (local, containers) uses them.
RUN_SETTINGS: dict[str, str] = {
    "HODEI_HEARTBEAT_INTERVAL": "0.5",
    "HODEI_HEARTBEAT_MISS_LIMIT": "3",
    "HODEI_REAPER_INTERVAL": "0.2",
    "HODEI_DISPATCH_POLL_INTERVAL": "0.2",
    "HODEI_ACK_TIMEOUT": "3",
    "HODEI_OUTBOX_POLL_INTERVAL": "0.2",
    "HODEI_KEEPALIVE_TIME_MS": "1000",
    "HODEI_KEEPALIVE_TIMEOUT_MS": "5000",
    "HODEI_SERVER_MIN_PING_INTERVAL_MS": "500",
    "HODEI_RECONNECT_MAX_BACKOFF": "1",
    "HODEI_CANCEL_GRACE_SECONDS": "1",
    "HODEI_LOG_LEVEL": "INFO",
    "HODEI_LOG_FORMAT": "text",
    # Many platforms run at once (xdist, parallel runs): no fixed /metrics port. The
    # local launcher gives each process a known free one (ProcessInfo.metrics_port).
    "HODEI_METRICS_PORT": "0",
    "HODEI_WORKER_METRICS_PORT": "0",
}

#: The variables that give a server or worker process any free /metrics port: for the
#: tests and tools that start processes next to others.
ANY_METRICS_PORT = {k: RUN_SETTINGS[k] for k in ("HODEI_METRICS_PORT", "HODEI_WORKER_METRICS_PORT")}

KEEPALIVE_PERIOD_S = int(RUN_SETTINGS["HODEI_KEEPALIVE_TIME_MS"]) / 1000.0
HEARTBEAT_PERIOD_S = float(RUN_SETTINGS["HODEI_HEARTBEAT_INTERVAL"])

#: The live launcher's TLS options (the client side of hodei.settings.TlsSettings):
#: `--tls-ca FILE` or HODEI_E2E_TLS_CA, and so on.
TLS_OPTIONS = {
    "ca": "PEM CA that signed the server's certificate; set: dial with TLS",
    "client_cert": "PEM client certificate, when the server asks for one (mTLS)",
    "client_key": "PEM private key of the client certificate",
    "server_name": "name to verify in the server's certificate (default: the host)",
}


T = TypeVar("T")


class LaunchError(RuntimeError):
    """The platform could not be started; the message says which part and why.

    A subclass with `skip = True` means the launcher cannot run here at all (no
    Docker engine, say): the scenarios are then skipped with the message, never passed.
    """

    skip = False


@dataclass
class LauncherConfig:
    """What `--launcher` and its options ask for, whichever launcher reads it."""

    name: str = "local"
    database_url: str | None = None  # live: the deployment; local: a server to create a DB on
    server: str | None = None  # live only
    workers: int = 2
    slots: int = 4
    faults: frozenset[str] = frozenset()
    run_dir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: live: how to dial the server, as the client tls settings ({"ca": path, ...}).
    tls: dict[str, str] = field(default_factory=dict)
    token: str | None = None  # live only: the token the harness calls the server with


@dataclass
class ProcessInfo:
    """A process (or container) the launcher started or found."""

    role: str  # "server" | "worker" | "database"
    name: str
    pid: int | None = None
    log_path: Path | None = None
    container_id: str | None = None
    #: Where its /metrics answers on 127.0.0.1 (0: unknown, or metrics off).
    metrics_port: int = 0


@dataclass
class Deployment:
    """Endpoints of a running platform, whichever launcher made it."""

    mode: str  # "local" | "live" | "containers"
    database_url: str  # full URL with password; redact before printing
    server_address: str  # host:port
    processes: list[ProcessInfo] = field(default_factory=list)
    # Live deployments must never be altered beyond test-tagged jobs.
    owned: bool = True
    #: How a client dials the server: the client side of the tls settings by name
    #: ({"ca": "/certs/ca.pem", "client_cert": ...}); empty: plaintext.
    tls: dict[str, str] = field(default_factory=dict)

    def client_tls(self) -> ClientTLS | None:
        """The TLS a client of this deployment uses (None: plaintext)."""
        return client_tls(TlsSettings.model_validate(self.tls)) if self.tls else None

    def tls_environment(self) -> dict[str, str]:
        """The HODEI_TLS_* variables that point a `hodei` process at this deployment."""
        return environment_for({"tls": self.tls})

    #: The token the driver and the CLI use (admin when the launcher made it; a live
    #: deployment's is the operator's: a client token is enough). Empty: none.
    token: str = ""
    #: The token of the workers the launcher starts (empty for live).
    worker_token: str = ""


class Launcher(abc.ABC):
    """Starts (or attaches to) a platform and tears it down."""

    name: str

    @abc.abstractmethod
    def start(self) -> Deployment: ...

    @abc.abstractmethod
    def stop(self) -> None: ...


def create_run_token(database_url: str, role: str) -> str:
    """A token made straight in a run's (migrated) database, as `hodei token create`
    does: the launchers that own the platform run it with authentication on."""
    import uuid

    import psycopg

    from hodei.db.connector import query
    from hodei.domain.auth import format_token, hash_secret, new_secret

    token_id, secret = uuid.uuid4(), new_secret()
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            query("insert_token"),
            {
                "id": token_id,
                "name": f"e2e-{role}-{token_id.hex[:8]}",
                "role": role,
                "secret_hash": hash_secret(secret),
                "expires_in": None,
                "max_registrations": None,
                "register_within": None,
            },
        )
    return format_token(token_id, secret)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_health(address: str, timeout_s: float = 1.0, tls: ClientTLS | None = None) -> str:
    """grpc.health.v1 status of the whole server ("SERVING", "NOT_SERVING", ...)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with sync_channel(address, tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def ready_workers(database_url: str, pids: list[int]) -> list[tuple[int, str]]:
    """(pid, state) of the workers with those pids that hold an open stream."""
    with read_only_connection(database_url, connect_timeout_s=3) as conn:
        rows = conn.execute(
            "SELECT pid, state FROM workers WHERE pid = ANY(%s) AND server_id IS NOT NULL"
            " AND state IN ('READY', 'BUSY')",
            (pids,),
        ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def _wait_while_running(
    what: str,
    probe: Callable[[], T],
    ready: Callable[[T], bool],
    check_running: Callable[[], None],
    log_tail: Callable[[], str],
    timeout_s: float,
    poll_s: float,
) -> None:
    """:func:`wait_for` on processes just launched: `check_running` raises LaunchError
    as soon as one has died, and a timeout is a LaunchError ending with `log_tail()`."""

    def probe_running() -> T:
        check_running()
        return probe()

    try:
        wait_for(what, probe_running, ready, timeout_s, poll_s=poll_s, abort_on=(LaunchError,))
    except AssertionError as exc:
        raise LaunchError(f"{exc}; {log_tail()}") from None


def wait_serving(
    address: str,
    what: str,
    check_running: Callable[[], None],
    log_tail: Callable[[], str],
    timeout_s: float,
    poll_s: float,
    tls: ClientTLS | None = None,
) -> None:
    """Wait until the server at `address` answers SERVING; `check_running` raises
    LaunchError as soon as it has died, and a timeout says what its log ends with."""
    _wait_while_running(
        f"{what} {address} to answer SERVING on grpc.health.v1",
        lambda: server_health(address, tls=tls),
        lambda status: status == "SERVING",
        check_running,
        lambda: f"server log: {log_tail()}",
        timeout_s,
        poll_s,
    )


def wait_workers_ready(
    database_url: str,
    pids: list[int],
    what: str,
    check_running: Callable[[], None],
    log_tails: Callable[[], str],
    timeout_s: float,
    poll_s: float,
) -> None:
    """Wait until the workers with those pids are registered READY with an open stream."""
    _wait_while_running(
        f"{len(pids)} {what} {pids} registered READY with an open stream",
        lambda: ready_workers(database_url, pids),
        lambda rows: len(rows) >= len(pids),
        check_running,
        log_tails,
        timeout_s,
        poll_s,
    )
