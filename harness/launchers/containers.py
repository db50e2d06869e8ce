"""`containers` launcher: PostgreSQL, the server and each worker in its own container.

Built on testcontainers (>= 4.15): `PostgresContainer` for the database (the local
`hodei/postgres:15` image where no registry is reachable, else the official
`postgres:16`) and `DockerContainer` for the server and the workers, all from one
project image (`hodei/hodei:dev`, ./Dockerfile; built from the wheelhouse when it is
missing). Every container uses host networking on free ports, so all traffic stays on
loopback and the endpoints are the same kind as the local launcher's:
`postgresql://...@127.0.0.1:<port>/hodei` and `127.0.0.1:<port>`.

Workers share the host's PID namespace, so the pid a worker registers (and the harness
reads from the `workers` table) is the host pid of its container's main process:
"kill the worker running the job" becomes a SIGKILL of that container.

Container output is followed into `<run dir>/logs/<name>.log` while the run goes on,
so the harness scans it for ERROR / gRPC stream errors and the report includes it.

Ryuk (testcontainers' reaper) needs an image pull, so it is disabled; `stop()` removes
every container it started, found by the run's label, and the containers are created
with `auto_remove=False` so that the logs of a killed worker survive until then.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.launchers.base import (
    RUN_SETTINGS,
    Deployment,
    Launcher,
    LauncherConfig,
    LaunchError,
    ProcessInfo,
    create_run_token,
    free_port,
    wait_serving,
    wait_workers_ready,
)
from harness.launchers.container_handling import (
    LogFollower,
    disable_ryuk,
    log_tail,
    stop_quietly,
)
from harness.launchers.docker_images import (
    DEFAULT_IMAGE,
    docker_client,
    ensure_project_image,
    first_line,
    postgres_image,
)
from hodei.settings import TlsSettings, environment_for
from hodei.tls import client_tls

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

logger = logging.getLogger(__name__)

RUN_LABEL = "org.hodei.e2e.run"
ROLE_LABEL = "org.hodei.e2e.role"


@dataclass
class ContainersOptions:
    workers: int = 2
    slots: int = 4
    image: str = DEFAULT_IMAGE
    #: None: the local hodei/postgres:15 if it exists, else the official postgres:16.
    postgres_image: str | None = None
    #: Build `image` from ./Dockerfile and .ci/wheelhouse when it does not exist.
    build_missing: bool = True
    #: BASE_IMAGE build argument; None: the local Debian python base if it exists,
    #: else the Dockerfile's default (python:3.11-slim, pulled).
    base_image: str | None = None
    run_dir: Path | None = None
    start_timeout_s: float = 60.0
    extra_env: dict[str, str] = field(default_factory=dict)
    #: mTLS on the gRPC port, with certificates made for the run (harness.certs): the
    #: server, its workers, their health checks and the harness's clients all use them.
    tls: bool = True


@dataclass
class _Started:
    info: ProcessInfo
    container: DockerContainer
    follower: LogFollower


class ContainersLauncher(Launcher):
    """Starts PostgreSQL, the server and N workers as containers on the host network."""

    name = "containers"
    can_kill_processes = True

    def __init__(self, options: ContainersOptions | None = None) -> None:
        self.options = options or ContainersOptions()
        self.run_id = uuid.uuid4().hex[:10]
        if self.options.run_dir is None:
            import tempfile

            self.run_dir = Path(tempfile.mkdtemp(prefix="hodei-e2e-containers-"))
        else:
            self.run_dir = self.options.run_dir
        self.log_dir = self.run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.deployment: Deployment | None = None
        self._client: Any | None = None
        self._started: list[_Started] = []
        self._pg: Any = None
        self._worker_seq = 0
        self.worker_prefix = "worker-"
        self._attached = False
        #: The run's certificate folder, mounted read-only at the same path in the
        #: server and worker containers; and a client's tls settings (paths in it).
        self._tls_dir: Path | None = None
        self._client_tls: dict[str, str] = {}
        self._server_tls: dict[str, str] = {}

    # -- containers -----------------------------------------------------------------
    def _labels(self, role: str) -> dict[str, str]:
        return {RUN_LABEL: self.run_id, ROLE_LABEL: role}

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        # The same short intervals as the local launcher, so the same features (and
        # their timing assumptions) hold in containers.
        env = dict(RUN_SETTINGS)
        env.update(self.options.extra_env)
        env.update(extra)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _follow(self, role: str, name: str, container: DockerContainer) -> _Started:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        log_path = self.log_dir / f"{name}.log"
        follower = LogFollower(wrapped, log_path)
        follower.start()
        info = ProcessInfo(
            role=role,
            name=name,
            pid=int(wrapped.attrs["State"]["Pid"]) or None,
            log_path=log_path,
            container_id=wrapped.id,
        )
        started = _Started(info, container, follower)
        self._started.append(started)
        # The run's process registry (as the local launcher keeps it): the harness adds
        # workers started during the run (replacements, also by xdist workers) to the
        # deployment in the report from it.
        with (self.run_dir / "processes.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(
                json.dumps(
                    {
                        "role": role,
                        "name": name,
                        "pid": info.pid,
                        "log_path": str(log_path),
                        "container_id": info.container_id,
                    }
                )
                + "\n"
            )
        return started

    def _check_running(self, started: _Started) -> None:
        wrapped = started.container.get_wrapped_container()
        wrapped.reload()
        if wrapped.status not in ("created", "running"):
            code = wrapped.attrs["State"].get("ExitCode")
            raise LaunchError(
                f"container {started.info.name} ({wrapped.short_id}) is "
                f"{wrapped.status} (exit code {code}); log: "
                f"{log_tail(wrapped)}"
            )

    def _start_database(self, client: Any) -> str:
        from testcontainers.community.postgres import PostgresContainer

        disable_ryuk()
        image = postgres_image(client, self.options.postgres_image)
        port = free_port()
        password = secrets.token_hex(12)
        pg = (
            PostgresContainer(
                image, username="hodei", password=password, dbname="hodei", driver=None
            )
            .with_name(f"hodei-e2e-{self.run_id}-postgres")
            # hodei/postgres and the official image both read PGPORT (postgres,
            # pg_isready, and the psql of testcontainers' readiness check).
            .with_env("PGPORT", str(port))
            .with_kwargs(network_mode="host", labels=self._labels("database"))
        )
        # Host networking publishes nothing; get_connection_url()/get_exposed_port()
        # do not apply, so the URL is built from the port chosen above.
        pg.ports.clear()
        self._pg = pg
        try:
            pg.start()
        except Exception as exc:
            raise LaunchError(
                f"PostgreSQL container ({image}) did not start: {first_line(exc)}"
            ) from None
        self._follow("database", "postgres", pg)
        return f"postgresql://hodei:{password}@127.0.0.1:{port}/hodei"

    def _make_certs(self) -> None:
        from harness.certs import make_certs

        self._tls_dir = self.run_dir / "tls"
        certs = make_certs(self._tls_dir)
        self._tls_dir.chmod(0o755)  # readable by the image's unprivileged user
        for path in self._tls_dir.iterdir():
            path.chmod(0o644)  # throwaway test keys: nothing here is secret
        self._client_tls = certs.client("good")
        self._server_tls = {**certs.server(mtls=True), **self._client_tls}

    def _tls_env(self, role: str) -> dict[str, str]:
        """HODEI_TLS_* of a container: the server's pair and client CA (its health check
        dials it too, so it also gets a client's), or a client's."""
        if self._tls_dir is None:
            return {}
        return environment_for({"tls": self._server_tls if role == "server" else self._client_tls})

    def worker_tls_env(self) -> dict[str, str]:
        """The HODEI_TLS_* a worker container of this run dials with ({}: plaintext)."""
        return self._tls_env("worker")

    def tls_volumes(self) -> dict[str, str]:
        """The run's certificate folder, mounted at the same path ({}: plaintext)."""
        return {str(self._tls_dir): str(self._tls_dir)} if self._tls_dir is not None else {}

    def _container(
        self,
        role: str,
        name: str,
        command: list[str],
        env: dict[str, str],
        mounts: dict[str, tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> _Started:
        """`mounts`: host path -> (container path, "ro" | "rw")."""
        from testcontainers.core.container import DockerContainer

        tls = role in ("server", "worker") and self._tls_dir is not None
        env = {**env, **self._tls_env(role)} if tls else env

        disable_ryuk()
        container = (
            DockerContainer(self.options.image)
            .with_name(f"hodei-e2e-{self.run_id}-{name}")
            .with_command(command)
            .with_kwargs(network_mode="host", labels=self._labels(role), **kwargs)
        )
        for key, value in env.items():
            container.with_env(key, value)
        if tls:
            # The run's certificates, read-only, at the same path as on the host.
            container.with_volume_mapping(str(self._tls_dir), str(self._tls_dir), mode="ro")
        for host, (inside, mode) in (mounts or {}).items():
            container.with_volume_mapping(host, inside, mode=mode)
        try:
            container.start()
        except Exception as exc:
            raise LaunchError(
                f"container {name} ({self.options.image}) did not start: {first_line(exc)}"
            ) from None
        return self._follow(role, name, container)

    def start_server(
        self,
        database_url: str,
        *,
        name: str = "server",
        env: dict[str, str] | None = None,
        mounts: dict[str, tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> tuple[ProcessInfo, str]:
        """The deployment's server; or, with another `name`, one more server on the same
        database (the @providers scenarios' scaling server: its `env`, `mounts` and
        container `kwargs` such as group_add, added)."""
        port = free_port()
        address = f"127.0.0.1:{port}"
        # `hodei server` applies the migrations at start (`hodei db migrate` is the
        # compose file's one-shot service; here the server does it, as locally).
        started = self._container(
            "server",
            name,
            ["server"],
            self._env(
                {
                    "HODEI_DATABASE_URL": database_url,
                    "HODEI_HOST": "127.0.0.1",
                    "HODEI_PORT": str(port),
                    **(env or {}),
                }
            ),
            mounts,
            **kwargs,
            healthcheck={
                "test": ["CMD", "hodei-healthcheck", address],
                "interval": 2_000_000_000,
                "timeout": 3_000_000_000,
                "retries": 3,
            },
        )

        wait_serving(
            address,
            "server container",
            lambda: self._check_running(started),
            lambda: log_tail(started.container.get_wrapped_container()),
            self.options.start_timeout_s,
            poll_s=0.2,
            tls=client_tls(TlsSettings.model_validate(self._client_tls))
            if self._client_tls
            else None,
        )
        return started.info, address

    def start_worker(self, wait: bool = True) -> ProcessInfo:
        """Start one more worker container (also used to replace a killed one)."""
        if self.deployment is None:
            raise LaunchError("start the platform before adding workers")
        self._worker_seq += 1
        name = f"{self.worker_prefix}{self._worker_seq}"
        address = self.deployment.server_address
        started = self._container(
            "worker",
            name,
            ["worker", "--server", address, "--slots", str(self.options.slots), "--name", name],
            self._env(
                {"HODEI_SERVER_ADDRESS": address, "HODEI_TOKEN": self.deployment.worker_token}
            ),
            # the host's PID namespace: the pid the worker registers is the host pid
            pid_mode="host",
            healthcheck={
                "test": ["CMD", "hodei-healthcheck", address],
                "interval": 5_000_000_000,
                "timeout": 3_000_000_000,
                "retries": 3,
            },
        )
        self.deployment.processes.append(started.info)
        if wait:
            self.wait_workers_ready([started.info])
        return started.info

    def wait_workers_ready(self, infos: list[ProcessInfo]) -> None:
        assert self.deployment is not None
        mine = [s for s in self._started if s.info in infos]

        def check_running() -> None:
            for started in mine:
                self._check_running(started)

        wait_workers_ready(
            self.deployment.database_url,
            [i.pid for i in infos if i.pid is not None],
            "worker container(s)",
            check_running,
            lambda: "; ".join(
                f"{s.info.name}: {log_tail(s.container.get_wrapped_container())}" for s in mine
            ),
            self.options.start_timeout_s,
            poll_s=0.2,
        )

    def kill_process(self, pid: int) -> None:
        """SIGKILL the container whose main process has this host pid (a worker)."""
        target = None
        for started in self._started:
            if started.info.pid == pid:
                target = started.container.get_wrapped_container()
        if target is None and self._client is not None:
            # a container started by another pytest process of the run (xdist)
            for container in self._client.containers.list(
                filters={"label": f"{RUN_LABEL}={self.run_id}"}
            ):
                if int(container.attrs["State"]["Pid"]) == pid:
                    target = container
        if target is None:
            raise LaunchError(f"no container of this run has main process pid {pid}")
        with contextlib.suppress(Exception):
            target.kill(signal="SIGKILL")
        target.wait(timeout=10)

    @classmethod
    def attach(
        cls, deployment: Deployment, run_dir: Path, slots: int, worker_prefix: str
    ) -> ContainersLauncher:
        """A launcher for another pytest process of the same run (an xdist worker): it
        kills and adds worker containers of the controller's run (same run label, so
        the controller's stop() removes them too) and never stops the platform."""
        launcher = cls(ContainersOptions(workers=0, slots=slots, run_dir=run_dir))
        client = docker_client()
        server = next(p for p in deployment.processes if p.role == "server")
        container = client.containers.get(server.container_id)
        launcher._client = client
        launcher.run_id = container.labels[RUN_LABEL]
        launcher.options.image = container.attrs["Config"]["Image"]
        launcher.deployment = deployment
        launcher.worker_prefix = worker_prefix
        launcher._attached = True
        if deployment.tls:  # the controller's certificates: its workers' settings
            launcher._client_tls = dict(deployment.tls)
            launcher._tls_dir = Path(deployment.tls["ca"]).parent
        return launcher

    # -- Launcher interface -------------------------------------------------------------
    def start(self) -> Deployment:
        began = time.monotonic()
        client = docker_client()
        self._client = client
        try:
            ensure_project_image(
                client, self.options.image, self.options.base_image, self.options.build_missing
            )
            database_url = self._start_database(client)
            if self.options.tls:
                self._make_certs()
            server, address = self.start_server(database_url)
            # Tokens on, as locally: made in the run's database once the server has
            # migrated it (host networking: the database is on this host's loopback).
            self.deployment = Deployment(
                mode="containers",
                database_url=database_url,
                server_address=address,
                processes=[self._started[0].info, server],
                token=create_run_token(database_url, "admin"),
                worker_token=create_run_token(database_url, "worker"),
                tls=dict(self._client_tls),
            )
            workers = [self.start_worker(wait=False) for _ in range(self.options.workers)]
            self.wait_workers_ready(workers)
        except BaseException:
            self.stop()
            raise
        logger.info("container platform up in %.1fs at %s", time.monotonic() - began, address)
        return self.deployment

    def stop(self) -> None:
        """Stop the workers (graceful SIGTERM), then the server, then PostgreSQL; keep
        their logs in the run directory; remove every container of this run."""
        if self._attached:
            # the controller owns the run's containers; only forget ours
            self._started.clear()
            return
        for role in ("worker", "server", "database"):
            # all containers of one role at once (each may take its grace period)
            stoppers = [
                threading.Thread(target=stop_quietly, args=(s.container,))
                for s in self._started
                if s.info.role == role
            ]
            for thread in stoppers:
                thread.start()
            for thread in stoppers:
                thread.join(timeout=15)
        for started in self._started:
            started.follower.join(timeout=5)
        if self._client is not None:
            # By label: also catches a container whose start() failed half-way.
            for container in self._client.containers.list(
                all=True, filters={"label": f"{RUN_LABEL}={self.run_id}"}
            ):
                with contextlib.suppress(Exception):
                    container.remove(force=True, v=True)
            self._client.close()
            self._client = None
        self._started.clear()
        self._pg = None


def make_launcher(config: LauncherConfig) -> ContainersLauncher:
    """Factory called by harness.launchers.select for `--launcher containers`.

    `config.extra` may set `image`, `postgres_image` and `base_image`.
    """
    return ContainersLauncher(
        ContainersOptions(
            workers=config.workers,
            slots=config.slots,
            run_dir=config.run_dir,
            image=config.extra.get("image", DEFAULT_IMAGE),
            postgres_image=config.extra.get("postgres_image"),
            base_image=config.extra.get("base_image"),
        )
    )
