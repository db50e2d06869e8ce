"""`hodei up`: the whole platform in the foreground for a laptop or a demo.

The embedded PostgreSQL (unless a database URL is given), the server in this
process and N worker subprocesses. A worker that dies is restarted (that loop is
supervised like the server's own). SIGINT/SIGTERM stop everything in order: the
workers first (they finish or stop their jobs and report), then the server,
then the embedded database; the exit code is 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hodei import exit_codes
from hodei.errors import HodeiError, InvalidArgument, Unavailable
from hodei.flags import add_setting_flags, settings_from_args
from hodei.redaction import redact
from hodei.settings import Settings, TlsSettings, environment_for
from hodei.worker.command import worker_command

if TYPE_CHECKING:
    from hodei.server.app import ServerApp

logger = logging.getLogger(__name__)

_WORKER_READY_S = 30.0
_RESTART_DELAY_S = 1.0
#: A local worker that exits this soon after its start, this many times in a row, cannot
#: start (a setting it refuses, a port it cannot take): restarting it again cannot help.
_EARLY_EXIT_S = 10.0
_EARLY_EXITS = 3


#: Settings `hodei up` takes as flags (hodei.flags builds them).
UP_OPTIONS = (
    "server.host",
    "server.port",
    "worker.slots",
    "database.url",
    "database.data_dir",
    "logging.level",
    "logging.format",
    "metrics.enabled",
    "metrics.port",
    "metrics.worker_port",
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="database + server + local workers in the foreground")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="local workers (0-64)")
    add_setting_flags(p, *UP_OPTIONS)
    p.set_defaults(sync_handler=run_up)


def run_up(args: argparse.Namespace) -> int:
    from hodei.logging_setup import configure_logging
    from hodei.tracing import SERVER_SERVICE, setup_tracing

    if not 0 <= args.workers <= 64:
        raise InvalidArgument(f"--workers must be between 0 and 64, not {args.workers}")
    # A local platform on loopback: plaintext whatever HODEI_TLS_* says, so that the
    # variables meant for a remote deployment do not half-configure this one.
    given = settings_from_args(args).model_copy(update={"tls": TlsSettings()})
    settings = with_secret_key(given)
    configure_logging(settings.logging.level, settings.logging.format, settings.logging.file)
    key_file = None if given.server.secret_key else secret_key_file(settings)
    # The server runs in this process (its workers are processes of their own, which
    # read the same OTEL_* variables).
    flush_spans = setup_tracing(settings.tracing, SERVER_SERVICE)
    try:
        return asyncio.run(Platform(settings, args.workers, key_file).run())
    finally:
        flush_spans()


def secret_key_file(settings: Settings) -> Path:
    """Where `hodei up` keeps the key it made: beside the embedded database's data
    dir (the per-user data dir by default), so that it lives as long as the jobs."""
    from hodei.settings import default_data_dir

    data_dir = settings.database.data_dir or default_data_dir()
    return data_dir.parent / f"{data_dir.name}.secret-key"


def with_secret_key(settings: Settings) -> Settings:
    """The settings with a HODEI_SECRET_KEY: the one given, else the one `hodei up`
    keeps in its data dir, made on first use (mode 0600), so that the quickstart takes
    secret env without a step more. The key is never printed."""
    if settings.server.secret_key:
        return settings
    from cryptography.fernet import Fernet

    path = secret_key_file(settings)
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two `hodei up` starting together keep the first key.
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(Fernet.generate_key() + b"\n")
        key = path.read_text().strip()
    except OSError as err:
        raise InvalidArgument(f"cannot keep the secret key in {path}: {err.strerror}") from None
    try:
        Fernet(key)
    except ValueError:
        raise InvalidArgument(
            f"{path} does not hold a Fernet key; remove it to make a new one "
            "(jobs queued with secret env under the old key would then fail)"
        ) from None
    server = settings.server.model_copy(update={"secret_key": key})
    return settings.model_copy(update={"server": server})


class Platform:
    def __init__(self, settings: Settings, workers: int, key_file: Path | None = None) -> None:
        self.settings = settings
        self.key_file = key_file  # None: the key came from HODEI_SECRET_KEY
        self.workers = workers
        self.slots = settings.worker.slots
        self.stop = asyncio.Event()
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        #: Tokens by role ("admin", "worker"); empty while authentication is off.
        self.tokens: dict[str, str] = {}
        self.started_at: dict[int, float] = {}
        self.early_exits: dict[int, int] = {}
        #: Why `hodei up` gave up on its workers ("" while it has not).
        self.failure = ""

    async def run(self) -> int:
        from hodei.server.app import ServerApp

        metrics = self.settings.metrics
        last_port = metrics.worker_port + self.workers - 1
        if metrics.enabled and metrics.worker_port and self.workers and last_port > 65535:
            raise InvalidArgument(
                f"{self.workers} local workers need /metrics ports {metrics.worker_port}-"
                f"{last_port}, beyond 65535: lower --worker-metrics-port "
                "(HODEI_WORKER_METRICS_PORT), or 0 for any free port"
            )

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        app = ServerApp(self.settings)
        keeper: asyncio.Task[None] | None = None
        try:
            start = asyncio.create_task(app.start(), name="server-start")
            stopped = asyncio.create_task(self.stop.wait())
            await asyncio.wait({start, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not start.done():  # Ctrl-C while the database was starting
                start.cancel()
                with contextlib.suppress(asyncio.CancelledError, HodeiError):
                    await start
                return exit_codes.OK
            stopped.cancel()
            start.result()
            if self.settings.auth.enabled:
                self.tokens = await self._credentials(app)
            address = self._worker_address(app.port)
            for index in range(self.workers):
                await self._spawn(index, address)
            keeper = asyncio.create_task(self._keep_workers(address), name="up-workers")
            await self._wait_workers_ready(address)
            if not self.stop.is_set():
                self._banner(app.address, address, app.database_url)
                await self.stop.wait()
            if self.failure:
                raise Unavailable(self.failure)
            print("hodei: stopping...", file=sys.stderr, flush=True)
            return exit_codes.OK
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            await self._stop_workers()
            await app.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _worker_address(self, port: int) -> str:
        host = self.settings.server.host
        if host in ("0.0.0.0", "::", "[::]", ""):
            host = "127.0.0.1"
        return f"{host}:{port}"

    async def _spawn(self, index: int, address: str) -> None:
        argv = worker_command(
            address,
            slots=self.slots,
            name=f"up-{index + 1}",
            log_level=self.settings.logging.level,
            log_format=self.settings.logging.format,
        )
        # Entry-point boundary: the workers (and their jobs) inherit this environment,
        # less TLS: the local server is plaintext (see run_up).
        env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_TLS_")}
        if self.tokens:
            env["HODEI_TOKEN"] = self.tokens["worker"]
        env.update(self._metrics_env(index))
        self.procs[index] = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=asyncio.subprocess.DEVNULL
        )
        self.started_at[index] = asyncio.get_running_loop().time()
        logger.info("started local worker up-%d (pid %d)", index + 1, self.procs[index].pid)

    def _metrics_env(self, index: int) -> dict[str, str]:
        """The Nth local worker's /metrics: worker_port + N - 1 (0 stays 0, any free
        port), so that the workers of one host do not fight over one port."""
        metrics = self.settings.metrics
        port = metrics.worker_port + index if metrics.worker_port else 0
        values = {"enabled": metrics.enabled, "worker_port": port, "host": metrics.host}
        return environment_for({"metrics": {k: v for k, v in values.items() if v is not None}})

    async def _keep_workers(self, address: str) -> None:
        """Restart a local worker that exits while the platform is up."""
        while not self.stop.is_set():
            for index, proc in list(self.procs.items()):
                if proc.returncode is not None and not self.stop.is_set():
                    lived = asyncio.get_running_loop().time() - self.started_at[index]
                    early = lived < _EARLY_EXIT_S and proc.returncode != 0
                    self.early_exits[index] = self.early_exits.get(index, 0) + 1 if early else 0
                    if self.early_exits[index] >= _EARLY_EXITS:
                        self.failure = (
                            f"local worker up-{index + 1} exited with {proc.returncode} "
                            f"within {_EARLY_EXIT_S:g} s of its start {_EARLY_EXITS} times in "
                            "a row: it cannot start (its error is above); stopping"
                        )
                        self.stop.set()
                        return
                    logger.warning(
                        "local worker up-%d exited with %s; restarting it",
                        index + 1,
                        proc.returncode,
                    )
                    await asyncio.sleep(_RESTART_DELAY_S)
                    if not self.stop.is_set():
                        await self._spawn(index, address)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.5)

    async def _wait_workers_ready(self, address: str) -> None:
        if not self.workers:
            return
        from hodei.client import HodeiClient

        loop = asyncio.get_running_loop()
        end = loop.time() + _WORKER_READY_S
        async with HodeiClient(address, deadline=2.0, token=self.tokens.get("admin", "")) as client:
            while not self.stop.is_set():
                connected = [w for w in await client.list_workers() if w.connected]
                if len(connected) >= self.workers:
                    return
                if loop.time() > end:
                    raise Unavailable(
                        f"only {len(connected)} of {self.workers} local workers connected "
                        f"within {_WORKER_READY_S:g} s; see their log above"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), 0.1)

    async def _credentials(self, app: ServerApp) -> dict[str, str]:
        """The admin and worker tokens in the data dir's credentials file: reused while
        this database accepts them, else created (first start, or another database)."""
        from hodei.cli.credentials import credentials_path, read_credentials, write_credentials
        from hodei.domain.auth import Role
        from hodei.errors import Unauthenticated
        from hodei.server.tokens import TokenVerifier, create_token

        assert app.db is not None
        path = credentials_path(self.settings)
        tokens = read_credentials(path)
        verifier = TokenVerifier(app.db, 0)
        roles = {"admin": Role.ADMIN, "worker": Role.WORKER}
        fresh = dict(tokens)
        for name, role in roles.items():
            try:
                caller = await verifier.caller(tokens.get(name, ""))
                if caller.role == role:
                    continue
            except Unauthenticated:
                pass
            async with app.db.connection() as tx:
                _, fresh[name] = await create_token(tx, f"up-{name}-{os.urandom(4).hex()}", role)
        if fresh != tokens or not path.exists():
            write_credentials(path, fresh)
            logger.info("tokens for the CLI and the local workers written to %s", path)
        return fresh

    def _banner(self, listen: str, address: str, database_url: str) -> None:
        s = self.settings
        if s.database.url:
            database = f"PostgreSQL at {redact(database_url)}"
        else:
            from hodei.settings import default_data_dir

            database = f"embedded PostgreSQL in {s.database.data_dir or default_data_dir()}"
        # The CLI finds the admin token in the data dir; a chosen one it must be told.
        cli = "hodei"
        if self.tokens and s.database.data_dir:
            cli = f"HODEI_DATA_DIR={s.database.data_dir} hodei"
        lines = [
            f"Hodei is up on {listen}",
            f"  database: {database}",
            f"  workers:  {self.workers} local x {self.slots} slot(s)",
            f"  secret env key: {self.key_file or 'HODEI_SECRET_KEY'}",
            f"Submit a job:  {cli} --server {address} job run -- echo hello",
            f"Watch:         {cli} --server {address} workers | job list | queue",
            "Press Ctrl-C to stop.",
        ]
        if self.tokens:
            from hodei.cli.credentials import credentials_path

            lines.insert(
                3,
                f"  tokens:   {credentials_path(s)} (the CLI reads its admin token there)",
            )
        else:
            lines.insert(3, "  WARNING:  authentication is OFF")
        print("\n".join(lines), flush=True)

    async def _stop_workers(self) -> None:
        """SIGTERM (graceful: jobs finish or stop, results are confirmed), then SIGKILL."""
        running = [p for p in self.procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        grace = self.settings.worker.shutdown_grace + self.settings.worker.flush_timeout + 5
        for proc in running:
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                logger.warning("local worker pid %d did not stop; killing it", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
