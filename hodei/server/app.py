"""ServerApp: the database, the services, the background loops and the gRPC server
of one Hodei server process."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import uuid
from datetime import UTC, datetime

import grpc
import psycopg
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hodei.api.v1 import (
    jobs_pb2,
    jobs_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    platform_pb2,
    platform_pb2_grpc,
    workers_pb2,
    workers_pb2_grpc,
)
from hodei.db.connector import (
    DATABASE_DOWN,
    Database,
    application_name,
    with_application_name,
)
from hodei.db.embedded import resolve_database_url
from hodei.db.migrate import migrate
from hodei.errors import ConfigError, Unavailable, first_line
from hodei.metrics import MetricsEndpoint, ServerMetrics, metrics_host, use_server_metrics
from hodei.redaction import redact
from hodei.server.api.auth import AuthInterceptor
from hodei.server.api.call_metrics import CallMetrics
from hodei.server.api.database_gate import DatabaseGate
from hodei.server.api.decoding import DecodingGuard
from hodei.server.api.jobs_api import JobExecutionServicer, LogStreamServicer
from hodei.server.api.platform_api import PlatformServicer
from hodei.server.api.reflection import enable_reflection
from hodei.server.api.workers_api import WorkerAgentServicer
from hodei.server.db_watch import DatabaseWatch
from hodei.server.dispatcher import Dispatcher
from hodei.server.metrics_refresh import MetricsRefresh
from hodei.server.outbox import OutboxRelay
from hodei.server.recovery import Recovery
from hodei.server.retention import RetentionLoop
from hodei.server.scaler import Scaler, load_scaler_providers
from hodei.server.services import Services
from hodei.server.supervisor import Supervisor
from hodei.server.token_watch import TokenWatch
from hodei.server.tokens import TokenVerifier
from hodei.settings import Settings
from hodei.tls import server_credentials

logger = logging.getLogger(__name__)

_SERVICE_NAMES = [
    jobs_pb2.DESCRIPTOR.services_by_name["JobExecutionService"].full_name,
    logs_pb2.DESCRIPTOR.services_by_name["LogStreamService"].full_name,
    workers_pb2.DESCRIPTOR.services_by_name["WorkerAgentService"].full_name,
    platform_pb2.DESCRIPTOR.services_by_name["PlatformService"].full_name,
]


def grpc_server_options(settings: Settings) -> list[tuple[str, int]]:
    """HTTP/2 keepalive: ping idle connections, and accept the workers' pings even
    without active calls, so an idle stream is never torn down by either side.

    Not hodei.client.channel.channel_options: besides the same keepalive, a server
    sets what it accepts from its peers (the minimum interval between their pings),
    and has no reconnect backoff or send limit of its own."""
    return [
        ("grpc.keepalive_time_ms", settings.server.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.server.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", settings.server.min_ping_interval_ms),
        ("grpc.http2.min_ping_interval_without_data_ms", settings.server.min_ping_interval_ms),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen_policy(settings: Settings) -> None:
    """No authentication is allowed on a loopback address only, unless HODEI_INSECURE."""
    auth = settings.auth
    if auth.mode == "off" and not auth.insecure and not is_loopback(settings.server.host):
        raise ConfigError(
            f"refusing to listen on {settings.server.listen_address} without authentication "
            "(HODEI_AUTH=off is for loopback addresses): use HODEI_AUTH=required with tokens "
            "(`hodei token create`), or set HODEI_INSECURE=true to accept the risk"
        )


class ServerApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server_id = settings.server.id or (
            f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        )
        self.database_url = ""
        self.port = 0
        self.db: Database | None = None
        self.services: Services | None = None
        self.dispatcher: Dispatcher | None = None
        self.outbox: OutboxRelay | None = None
        self.recovery: Recovery | None = None
        self.retention: RetentionLoop | None = None
        self.db_watch: DatabaseWatch | None = None
        self.stop_event = asyncio.Event()
        self.supervisor = Supervisor(self.stop_event)
        self.health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self._stopped = False
        #: This server's metrics, on a registry of its own (several servers may share
        #: a test process); served over HTTP while settings.metrics.enabled.
        self.metrics = ServerMetrics()
        self.metrics_endpoint: MetricsEndpoint | None = None
        self.metrics_refresh: MetricsRefresh | None = None
        self.scaler: Scaler | None = None
        self.token_watch: TokenWatch | None = None

    @property
    def metrics_port(self) -> int:
        """The bound port of /metrics; 0 when metrics are off or not started."""
        return self.metrics_endpoint.port if self.metrics_endpoint is not None else 0

    @property
    def address(self) -> str:
        return f"{self.settings.server.host}:{self.port}"

    def role_url(self, role: str) -> str:
        """The database URL of a connection of this server's `role` (its
        application_name says whose it is in pg_stat_activity)."""
        return with_application_name(self.database_url, application_name(self.server_id, role))

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            # A start that fails (database away, gRPC port taken) frees the metrics port:
            # tests and `hodei up` may try again in the same process.
            if self.metrics_endpoint is not None:
                self.metrics_endpoint.stop()
                self.metrics_endpoint = None
            raise

    async def _start(self) -> None:
        settings = self.settings
        # Read and checked first: a wrong TLS file is one line before anything starts.
        credentials = server_credentials(settings.tls)
        check_listen_policy(settings)
        # providers.yaml too: a bad file is one line before anything starts.
        providers = load_scaler_providers(settings)
        # Before anything starts a task: each task copies the context, and with it these
        # metrics (hodei.metrics.families).
        use_server_metrics(self.metrics)
        if settings.metrics.enabled:
            # Bound before the database is touched: a port in use is one line at once.
            endpoint = MetricsEndpoint(
                self.metrics.registry, metrics_host(settings), settings.metrics.port, "server"
            )
            endpoint.start()
            self.metrics_endpoint = endpoint
        self.database_url = await asyncio.to_thread(resolve_database_url, settings)
        try:
            applied = await migrate(self.role_url("migrate"))
        except psycopg.OperationalError as exc:
            # The first contact with the database: one line that names it (password
            # redacted), translated once here for `hodei server`, `hodei up` and tests.
            first = first_line(exc)
            raise Unavailable(
                f"cannot use the database at {redact(self.database_url)}: {first}"
            ) from None
        if applied:
            logger.info("database migrated to version %d", applied[-1].version)
        self.db = Database(
            self.database_url,
            settings.database.pool_min,
            settings.database.pool_max,
            server_id=self.server_id,
        )
        await self.db.open()
        self.metrics.pools.pools = self.db.pools
        self.metrics.database_up.set_function(
            lambda: 1.0 if self.db_watch is None or self.db_watch.reachable else 0.0
        )
        services = Services.build(settings, self.server_id, datetime.now(UTC), self.db)
        self.services = services
        await services.status.started(
            settings.dispatcher.enabled, settings.server.outbox_relay_enabled
        )

        def database_up() -> bool:
            return self.db_watch is None or self.db_watch.reachable

        gate = DatabaseGate(database_up)
        verifier = (
            TokenVerifier(self.db, settings.auth.cache_seconds) if settings.auth.enabled else None
        )
        # The gate first: while the database is away, calls fail at once with UNAVAILABLE
        # instead of waiting on a token check.
        server = grpc.aio.server(
            options=grpc_server_options(settings),
            # CallMetrics outermost: it counts the calls the others refuse too. Only
            # when served: with metrics off a call pays nothing for them.
            interceptors=[
                *([CallMetrics(self.metrics)] if settings.metrics.enabled else []),
                gate,
                AuthInterceptor(verifier),
                DecodingGuard(),
            ],
        )
        jobs_pb2_grpc.add_JobExecutionServiceServicer_to_server(
            JobExecutionServicer(services), server
        )
        logs_pb2_grpc.add_LogStreamServiceServicer_to_server(LogStreamServicer(services), server)
        workers_pb2_grpc.add_WorkerAgentServiceServicer_to_server(
            WorkerAgentServicer(services, database_up), server
        )
        platform_pb2_grpc.add_PlatformServiceServicer_to_server(PlatformServicer(services), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        enable_reflection([*_SERVICE_NAMES, health.SERVICE_NAME], server)
        try:
            if credentials is None:
                self.port = server.add_insecure_port(settings.server.listen_address)
            else:
                self.port = server.add_secure_port(settings.server.listen_address, credentials)
        except RuntimeError:
            # grpc's text only says to set GRPC_VERBOSITY; the usual cause is a port taken.
            raise Unavailable(
                f"cannot listen on {settings.server.listen_address}: "
                "the port is in use or the address is not this host's"
            ) from None
        if self.port == 0:
            raise Unavailable(f"cannot listen on {settings.server.listen_address}: address in use?")
        self._server = server
        await server.start()
        await services.status.listening(self.address)

        self.recovery = Recovery(
            settings,
            self.db,
            services.job_reads,
            services.transitions,
            services.workers,
            services.registry,
            services.bus,
            services.status,
        )
        self.supervisor.start("recovery", self.recovery.run)
        if verifier is not None:
            self.token_watch = TokenWatch(verifier, services.registry)
            self.supervisor.start("token-watch", self.token_watch.run)
        if settings.dispatcher.enabled:
            self.dispatcher = Dispatcher(
                settings,
                self.role_url("dispatcher"),
                services.assigner,
                services.registry,
                services.status,
                services.pusher,
            )
            self.supervisor.start("dispatcher", self.dispatcher.run)
        else:
            logger.warning("dispatcher DISABLED by settings: queued jobs will not be dispatched")
        if settings.server.outbox_relay_enabled:
            self.outbox = OutboxRelay(settings, self.role_url("relay"), self.db, services.status)
            self.supervisor.start("outbox-relay", self.outbox.run)
        else:
            logger.warning("outbox relay DISABLED by settings: outbox rows stay unpublished")

        if settings.retention.enabled:
            self.retention = RetentionLoop(settings, self.role_url("retention"))
            self.supervisor.start("retention", self.retention.run)
        else:
            logger.info("retention loop disabled by settings: prune with `hodei db prune`")

        if settings.metrics.enabled:
            self.metrics_refresh = MetricsRefresh(
                self.metrics, self.role_url("metrics"), settings.metrics.refresh_interval
            )
            self.supervisor.start("metrics-refresh", self.metrics_refresh.run)

        if providers:
            host = settings.server.host
            dial = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]", "") else host
            self.scaler = Scaler(
                settings,
                self.db,
                self.server_id,
                settings.scaling.server_address or f"{dial}:{self.port}",
                providers,
            )
            services.assigner.on_queued.append(self.scaler.wake)
            services.provider_configs = tuple(config for config, _ in providers)
            self.supervisor.start("scaler", self.scaler.run)

        await self._set_health(True)
        self.db_watch = DatabaseWatch(self.db, self._set_health, settings.recovery.reaper_interval)
        self.supervisor.start("database-watch", self.db_watch.run)
        transport = (
            "plaintext"
            if credentials is None
            else "mTLS"
            if settings.tls.client_ca is not None
            else "TLS"
        )
        logger.info(
            "hodei server %s listening on %s (%s)",
            self.server_id,
            self.address,
            transport,
            extra={"server_id": self.server_id, "transport": transport},
        )
        previous = len(settings.server.previous_secret_key_list)
        # Said at every start: how an operator confirms a key rotation took effect.
        logger.info(
            "secret env: %s",
            (
                f"encrypted with HODEI_SECRET_KEY; {previous} previous key(s) to decrypt"
                if settings.server.secret_key
                else "refused (no HODEI_SECRET_KEY)"
            ),
            extra={"server_id": self.server_id},
        )
        if not settings.auth.enabled:
            logger.warning(
                "AUTHENTICATION IS OFF (%s): anyone who reaches %s can run commands, "
                "read every job and act as any worker",
                "HODEI_INSECURE=true" if settings.auth.insecure else "HODEI_AUTH=off",
                self.address,
                extra={"server_id": self.server_id},
            )

    async def _set_health(self, serving: bool) -> None:
        """grpc.health.v1 for the server and each of its services: SERVING only while
        the database answers (the database watch flips it)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        if self._stopped:
            return  # graceful shutdown owns the health status from now on
        for name in ["", *_SERVICE_NAMES]:
            await self.health.set(name, status)
        if serving:
            self.supervisor.database_back()

    async def stop(self, grace: float = 5.0) -> None:
        """Graceful: NOT_SERVING, close worker streams, stop the loops, mark the workers
        disconnected and the status row stopped, close the pool."""
        if self._stopped:
            return
        self._stopped = True
        logger.info("hodei server stopping", extra={"server_id": self.server_id})
        await self.health.enter_graceful_shutdown()
        if self.services is not None:
            self.services.registry.close_all()
        if self._server is not None:
            await self._server.stop(grace)
        await self.supervisor.stop_all(grace)
        if self.scaler is not None:
            await self.scaler.close()
        if self.services is not None and self.db_watch is not None and not self.db_watch.reachable:
            # The database is known to be away: waiting for a connection would hold the
            # shutdown for the pool's whole timeout (30 s) for rows the next server fixes.
            logger.warning("database unreachable: the shutdown is not recorded in it")
        elif self.services is not None:
            try:
                async with asyncio.timeout(grace):
                    await self.services.workers.disconnect_all()
                    await self.services.status.stopped()
            except TimeoutError:
                logger.warning("could not record the shutdown in the database within %.0f s", grace)
            except DATABASE_DOWN as exc:
                # Stopping during an outage: the rows say so once the database is back
                # (workers' server_id is cleared by the next server that sees them).
                logger.warning("could not record the shutdown in the database: %s", first_line(exc))
            except Exception:
                logger.exception("could not record the shutdown in the database")
        if self.db is not None:
            await self.db.close()
        if self.metrics_endpoint is not None:
            await asyncio.to_thread(self.metrics_endpoint.stop)
        logger.info("hodei server stopped", extra={"server_id": self.server_id})

    async def run_until(self, stop: asyncio.Event) -> None:
        """Start, serve until `stop` is set, then stop gracefully."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
