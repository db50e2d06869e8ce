"""The platform bench_platform.py measures: an embedded PostgreSQL (a fresh data dir),
a real server process and K real worker processes on 127.0.0.1, with tokens; and the
CPU meter that reads what each of them used over a phase."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.launchers.base import ANY_METRICS_PORT, free_port
from harness.processes import children, cpu_seconds
from hodei.client import HodeiClient
from hodei.worker.command import worker_command

_REPO = Path(__file__).resolve().parents[1]


# ---- processes ---------------------------------------------------------------------------


def postgres_pids(pgdata: Path) -> list[int]:
    """The embedded postmaster (first line of its postmaster.pid) and its children.

    Not by command line: the Hodei server's --database-url names the data dir too
    (the socket lives there), and counting it as PostgreSQL doubled its CPU."""
    try:
        master = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return []
    return [master, *children(master)]


@dataclass
class CpuMeter:
    """CPU seconds used by the server, the workers and PostgreSQL over a phase: the
    figure that still means something when other processes share the machine."""

    platform: Platform
    start: dict[str, float] = field(default_factory=dict)

    def sample(self) -> dict[str, float]:
        p = self.platform
        assert p.server is not None
        return {
            "server": cpu_seconds(p.server.pid),
            "workers": sum(cpu_seconds(w.pid) for w in p.worker_procs),
            "postgres": sum(cpu_seconds(pid) for pid in postgres_pids(p.workdir / "pgdata")),
            "client": cpu_seconds(os.getpid()),
        }

    @classmethod
    def begin(cls, platform: Platform) -> CpuMeter:
        meter = cls(platform)
        meter.start = meter.sample()
        return meter

    def report(
        self,
        units: float,
        unit: str,
        scale: float = 1000,
        label: str = "ms",
        end: dict[str, float] | None = None,
    ) -> None:
        end = end or self.sample()
        parts = [
            f"{name} {(end[name] - self.start[name]) * scale / units:.3f} {label}"
            for name in ("server", "workers", "postgres", "client")
        ]
        print(f"    CPU per {unit}: " + ", ".join(parts))


async def _make_tokens(url: str) -> tuple[str, str]:
    """An admin and a worker token in the (migrated) benchmark database."""
    import psycopg
    from psycopg.rows import dict_row

    from hodei.db.connector import PsycopgTx
    from hodei.db.migrate import migrate
    from hodei.domain.auth import Role
    from hodei.server.tokens import create_token

    await migrate(url)
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        tx = PsycopgTx(conn)
        suffix = os.urandom(4).hex()
        _, admin = await create_token(tx, f"bench-admin-{suffix}", Role.ADMIN)
        _, worker = await create_token(tx, f"bench-worker-{suffix}", Role.WORKER)
    return admin, worker


@dataclass
class Platform:
    workdir: Path
    workers: int
    slots: int
    server_args: list[str] = field(default_factory=list)
    #: HODEI_* settings for the server process only (to compare settings A/B).
    server_env: dict[str, str] = field(default_factory=dict)
    #: Serve /metrics (the platform's default) on known ports, or turn metrics off
    #: (HODEI_METRICS=false) in the server and the workers: the A/B of issue 15.
    metrics: bool = True
    #: The /metrics ports of the server and the workers (empty with metrics off).
    metrics_ports: list[int] = field(default_factory=list)
    #: HODEI_* settings for the worker processes.
    worker_env: dict[str, str] = field(default_factory=dict)
    address: str = ""
    #: The client's token (admin); the workers get a worker token. Made in the database
    #: before the server starts, as `hodei token create` does.
    token: str = ""
    #: The workers' token (role worker): real workers get it, and so may a fake one.
    worker_token: str = ""
    #: A database made by the caller (migrated and given tokens here) instead of an
    #: embedded PostgreSQL of the platform's own: benchmarks/peers runs Hodei and its
    #: peer on one server.
    database_url: str = ""
    #: The environment of the server and the workers (set by start()).
    env: dict[str, str] = field(default_factory=dict)
    server: subprocess.Popen[bytes] | None = None
    worker_procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pg: Any = None
    files: list[IO[bytes]] = field(default_factory=list)

    def _log(self, name: str) -> IO[bytes]:
        handle = (self.workdir / name).open("wb")
        self.files.append(handle)
        return handle

    def start(self, *, workers: bool = True) -> None:
        """The database, the server, and the workers unless `workers` is False (then
        spawn_workers() starts them later: jobs can be queued before any worker exists)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
        env["PYTHONPATH"] = str(_REPO)
        env.update(ANY_METRICS_PORT)
        url = self.database_url or self._embedded_database()
        self.token, self.worker_token = asyncio.run(_make_tokens(url))
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        if self.metrics:
            self.metrics_ports = [free_port()]
        else:
            env["HODEI_METRICS"] = "false"
        self.env = env
        server_metrics = {"HODEI_METRICS_PORT": str(self.metrics_ports[0])} if self.metrics else {}
        self.server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hodei.server",
                "--port",
                str(port),
                "--database-url",
                url,
                "--log-file",
                str(self.workdir / "server.log"),
                *self.server_args,
            ],
            env={**env, **server_metrics, **self.server_env},
            stdout=subprocess.DEVNULL,
            stderr=self._log("server.err"),
        )
        if workers:
            self.spawn_workers()

    def _embedded_database(self) -> str:
        import pgserver

        from hodei.db.databases import ensure_database

        self.pg = pgserver.get_server(self.workdir / "pgdata", cleanup_mode="stop")
        ensure_database(self.pg.get_uri(), "hodei")
        return str(self.pg.get_uri("hodei"))

    def spawn_workers(self) -> None:
        """Start the platform's `workers` worker processes (after start(workers=False))."""
        self.add_workers(self.workers)

    def add_workers(self, count: int) -> None:
        """Start `count` more worker processes (start() starts `workers` of them; a
        benchmark that queues before any worker exists starts them later)."""
        for _ in range(count):
            index = len(self.worker_procs) + 1
            metrics_env: dict[str, str] = {}
            if self.metrics:
                self.metrics_ports.append(free_port())
                metrics_env["HODEI_WORKER_METRICS_PORT"] = str(self.metrics_ports[-1])
            self.worker_procs.append(
                subprocess.Popen(
                    worker_command(
                        self.address,
                        slots=self.slots,
                        name=f"bench-{index}",
                        log_file=self.workdir / f"worker-{index}.log",
                    ),
                    env={
                        **self.env,
                        **self.worker_env,
                        "HODEI_TOKEN": self.worker_token,
                        **metrics_env,
                    },
                    stdout=subprocess.DEVNULL,
                    stderr=self._log(f"worker-{index}.err"),
                )
            )

    async def wait_ready(self, client: HodeiClient) -> None:
        await client.wait_ready(60)
        end = time.monotonic() + 60
        while True:
            connected = [w for w in await client.list_workers() if w.connected]
            if len(connected) >= self.workers:
                return
            if time.monotonic() > end:
                raise SystemExit(f"only {len(connected)}/{self.workers} workers connected")
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        for proc in [*self.worker_procs, self.server]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.worker_procs, self.server]:
            if proc is None:
                continue
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for handle in self.files:
            handle.close()
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.pg.cleanup()
