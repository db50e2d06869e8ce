"""`local` launcher: embedded PostgreSQL + server + N workers as subprocesses.

Everything lives in one run directory (a temp dir by default): the pgserver data
dir, one log file per process, and `processes.jsonl`, the list of every process
started for the run (so that whichever pytest process ends the session can
stop processes another one started, e.g. a replacement worker under xdist).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from harness.launchers.base import (
    RUN_SETTINGS,
    Deployment,
    Launcher,
    LaunchError,
    ProcessInfo,
    create_run_token,
    free_port,
    wait_serving,
    wait_workers_ready,
)
from harness.processes import alive, reap, wait_gone
from hodei.db.databases import create_database, drop_database
from hodei.db.embedded import start_again, start_pgserver
from hodei.errors import Unavailable
from hodei.settings import TESTING_ENV
from hodei.worker.command import worker_command

logger = logging.getLogger(__name__)

#: Fault names accepted by `--hodei-fault`, and the setting each one flips. A process
#: with a fault also gets the testing switch (HODEI_TESTING), without which Hodei
#: refuses the fault-injection settings.
FAULTS: dict[str, tuple[str, str, str]] = {
    # fault: (role, env var, value)
    "dispatcher_off": ("server", "HODEI_DISPATCHER_ENABLED", "false"),
    "outbox_relay_off": ("server", "HODEI_OUTBOX_RELAY_ENABLED", "false"),
    "worker_drop_logs": ("worker", "HODEI_FAULT_DROP_LOGS", "true"),
}


def log_tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return "<no log>"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return " | ".join(text[-lines:]) or "<empty log>"


@dataclass
class LocalOptions:
    workers: int = 2
    slots: int = 4
    faults: frozenset[str] = frozenset()
    #: A PostgreSQL server to create the run's database on, instead of pgserver.
    admin_database_url: str | None = None
    run_dir: Path | None = None
    keep_run_dir: bool = False
    start_timeout_s: float = 30.0
    extra_env: dict[str, str] = field(default_factory=dict)
    #: The settings every process gets: the harness's short heartbeats and timeouts by
    #: default; the chaos suite also runs with `{}` (the platform's own defaults).
    run_settings: dict[str, str] = field(default_factory=lambda: dict(RUN_SETTINGS))


class LocalLauncher(Launcher):
    """Starts the whole platform on this machine, on free ports, and stops it."""

    name = "local"
    can_kill_processes = True

    def __init__(self, options: LocalOptions | None = None) -> None:
        self.options = options or LocalOptions()
        unknown = set(self.options.faults) - set(FAULTS)
        if unknown:
            raise LaunchError(f"unknown fault(s) {sorted(unknown)}; known: {sorted(FAULTS)}")
        self._own_run_dir = self.options.run_dir is None
        self.run_dir = self.options.run_dir or Path(tempfile.mkdtemp(prefix="hodei-e2e-"))
        self.log_dir = self.run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._pg: Any = None
        self._created_db: tuple[str, str] | None = None  # (admin url, name)
        self.deployment: Deployment | None = None
        self._worker_seq = 0
        #: How long the platform took to come up, for the report's timing table:
        #: server_start_s (spawned to SERVING), workers_ready_s (spawned to READY), workers.
        self.timings: dict[str, float] = {}
        #: Log/registry name prefix of the workers this launcher starts (xdist workers
        #: attached to the controller's run use their own so that names never clash).
        self.worker_prefix = "worker-"

    # -- database -------------------------------------------------------------
    def _start_database(self) -> str:
        name = f"hodei_e2e_{uuid.uuid4().hex[:10]}"
        admin = self.options.admin_database_url
        if admin is None:
            try:
                self._pg = start_pgserver(self.run_dir / "pg", cleanup_mode="stop")
            except Unavailable as exc:
                raise LaunchError(str(exc)) from exc
            admin = str(self._pg.get_uri())
        try:
            url = create_database(admin, name, connect_timeout=5)
        except psycopg.Error as exc:
            raise LaunchError(f"cannot create the run database on PostgreSQL: {exc}") from exc
        self._created_db = (admin, name)
        return url

    # -- processes ------------------------------------------------------------
    def _env(self, role: str, database_url: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
        env.update(self.options.run_settings)
        if database_url:
            env["HODEI_DATABASE_URL"] = database_url
        if role == "worker" and self.deployment is not None and self.deployment.worker_token:
            env["HODEI_TOKEN"] = self.deployment.worker_token
        for fault in self.options.faults:
            fault_role, var, value = FAULTS[fault]
            if fault_role == role:
                env[var] = value
                env[TESTING_ENV] = "true"
        env.update(self.options.extra_env)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(
        self, role: str, name: str, argv: list[str], env: dict[str, str], metrics_port: int = 0
    ) -> ProcessInfo:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                cwd=self.run_dir,
            )
        self._procs[proc.pid] = proc
        info = ProcessInfo(
            role=role, name=name, pid=proc.pid, log_path=log_path, metrics_port=metrics_port
        )
        row = {"role": role, "name": name, "pid": proc.pid, "log_path": str(log_path)}
        if metrics_port:
            row["metrics_port"] = metrics_port
        with (self.run_dir / "processes.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        return info

    def _check_alive(self, info: ProcessInfo) -> None:
        proc = self._procs.get(info.pid or -1)
        if proc is not None and proc.poll() is not None:
            raise LaunchError(
                f"{info.name} exited with code {proc.returncode} while starting; "
                f"log {info.log_path}: {log_tail(info.log_path)}"
            )

    def start_server(
        self, database_url: str, port: int | None = None, name: str = "server"
    ) -> tuple[ProcessInfo, str]:
        """A server on `port` (a free one by default; the same one to restart a killed
        server where its workers and clients look for it)."""
        port = port or free_port()
        address = f"127.0.0.1:{port}"
        env = self._env("server", database_url)
        metrics_port = free_port() if env.get("HODEI_METRICS_PORT") == "0" else 0
        if metrics_port:
            env["HODEI_METRICS_PORT"] = str(metrics_port)
        info = self._spawn(
            "server",
            name,
            [sys.executable, "-m", "hodei.server", "--port", str(port)],
            env,
            metrics_port,
        )

        wait_serving(
            address,
            "server",
            lambda: self._check_alive(info),
            lambda: log_tail(info.log_path),
            self.options.start_timeout_s,
            poll_s=0.1,
        )
        return info, address

    def start_worker(self, wait: bool = True, address: str | None = None) -> ProcessInfo:
        """Start one more worker (also used to replace a killed one), connected to the
        deployment's server or to `address` (another replica)."""
        if self.deployment is None:
            raise LaunchError("start the platform before adding workers")
        self._worker_seq += 1
        name = f"{self.worker_prefix}{self._worker_seq}"
        env = self._env("worker", None)
        metrics_port = free_port() if env.get("HODEI_WORKER_METRICS_PORT") == "0" else 0
        if metrics_port:
            env["HODEI_WORKER_METRICS_PORT"] = str(metrics_port)
        info = self._spawn(
            "worker",
            name,
            worker_command(address or self.deployment.server_address, slots=self.options.slots),
            env,
            metrics_port,
        )
        self.deployment.processes.append(info)
        if wait:
            self.wait_workers_ready([info])
        return info

    def wait_workers_ready(self, infos: list[ProcessInfo]) -> None:
        assert self.deployment is not None

        def check_running() -> None:
            for info in infos:
                self._check_alive(info)

        wait_workers_ready(
            self.deployment.database_url,
            [i.pid for i in infos if i.pid is not None],
            "worker(s)",
            check_running,
            lambda: "; ".join(f"{i.name}: {log_tail(i.log_path, 5)}" for i in infos),
            self.options.start_timeout_s,
            poll_s=0.1,
        )

    def kill_process(self, pid: int) -> None:
        """SIGKILL a process of this run (the worker-killed-mid-job scenario)."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc = self._procs.get(pid)
        if proc is not None:
            proc.wait(timeout=5)

    def stop_database(self) -> None:
        """Stop the run's embedded PostgreSQL as an operator's `pg_ctl stop -m fast`
        does (SIGINT to the postmaster): the chaos suite's outage. Only the run's own
        PostgreSQL: a shared server is never stopped."""
        if self._pg is None:
            raise LaunchError("only the run's embedded PostgreSQL can be stopped")
        pid = self._pg.get_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        wait_gone(pid, 30)

    def start_database(self) -> None:
        """Start the embedded PostgreSQL stopped by stop_database, on the same socket."""
        if self._pg is None:
            raise LaunchError("only the run's embedded PostgreSQL can be started")
        start_again(self._pg)

    # -- Launcher interface -----------------------------------------------------
    def start(self) -> Deployment:
        started = time.monotonic()
        try:
            database_url = self._start_database()
            t0 = time.monotonic()
            server, address = self.start_server(database_url)
            self.timings["server_start_s"] = round(time.monotonic() - t0, 3)
            # Authentication on, as in production: the server migrated the database, so
            # the tokens can be made now; the driver and the CLI use the admin one.
            self.deployment = Deployment(
                mode="local",
                database_url=database_url,
                server_address=address,
                processes=[server],
                token=create_run_token(database_url, "admin"),
                worker_token=create_run_token(database_url, "worker"),
            )
            t0 = time.monotonic()
            workers = [self.start_worker(wait=False) for _ in range(self.options.workers)]
            self.wait_workers_ready(workers)
            self.timings["workers_ready_s"] = round(time.monotonic() - t0, 3)
            self.timings["workers"] = float(len(workers))
        except BaseException:
            self.stop()
            raise
        logger.info("local platform up in %.1fs at %s", time.monotonic() - started, address)
        return self.deployment

    def stop(self) -> None:
        stop_recorded_processes(self.run_dir)
        for proc in self._procs.values():
            if proc.poll() is None:  # pragma: no cover - recorded above
                proc.kill()
            proc.wait(timeout=5)
        self._procs.clear()
        # A kept run keeps its database too: the report's psql commands point at it.
        if self._created_db is not None and self._pg is None and not self.options.keep_run_dir:
            admin, name = self._created_db
            try:
                drop_database(admin, name, connect_timeout=5)
            except psycopg.Error as exc:
                logger.warning("could not drop run database %s: %s", name, exc)
        self._created_db = None
        if self._pg is not None:
            _stop_immediately(self._pg, self.run_dir / "pg")
            try:
                self._pg.cleanup()
            except Exception as exc:
                logger.warning("embedded PostgreSQL did not stop cleanly: %s", exc)
            self._pg = None
        if self._own_run_dir and not self.options.keep_run_dir:
            shutil.rmtree(self.run_dir / "pg", ignore_errors=True)


def _stop_immediately(pg: Any, pgdata: Path) -> None:
    """Stop the run's throwaway PostgreSQL without its shutdown checkpoint (which takes
    seconds after a run's writes); its data directory is deleted right after."""
    try:
        import importlib

        # pinned pgserver<0.2: its wrapper runs pg_ctl as the unprivileged user it created
        pg_ctl = importlib.import_module("pgserver._commands").pg_ctl

        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=pgdata, user=pg.system_user)
        # The postmaster may be our child: reap it, or pgserver sees a running zombie and
        # waits seconds before killing it.
        pg._postmaster_info.process.wait(timeout=3)
    except Exception as exc:  # the regular cleanup below still stops it
        logger.info("immediate stop of the embedded PostgreSQL failed: %s", exc)


def stop_recorded_processes(run_dir: Path, grace_s: float = 5.0) -> None:
    """SIGTERM every process listed in run_dir/processes.jsonl (all workers at once, then
    the server, so that it does not log their disconnection as errors), then SIGKILL
    stragglers."""
    registry = run_dir / "processes.jsonl"
    if not registry.exists():
        return
    entries = [json.loads(line) for line in registry.read_text().splitlines() if line.strip()]
    for role_is_server in (False, True):
        pids = [int(e["pid"]) for e in entries if (e["role"] == "server") == role_is_server]
        signalled = []
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGTERM)
                signalled.append(pid)
            except (ProcessLookupError, PermissionError):
                continue
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_running(pid) for pid in signalled):
            time.sleep(0.05)
        for pid in signalled:
            if _running(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    # The launcher's own children are reaped first, so that they do not linger as zombies.
    reap(pid)
    return alive(pid)
