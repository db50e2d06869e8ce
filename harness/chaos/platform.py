"""A private platform for chaos trials: the local launcher (its own embedded
PostgreSQL, never a shared server), with the faults an operator meets."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from harness.launchers.base import ANY_METRICS_PORT, RUN_SETTINGS, ProcessInfo
from harness.launchers.local import LocalLauncher, LocalOptions
from harness.processes import wait_gone_async

#: Settings profiles: the harness's short heartbeats, and the platform's own defaults.
PROFILES: dict[str, dict[str, str]] = {
    "short": dict(RUN_SETTINGS),
    "default": {"HODEI_LOG_LEVEL": "INFO", "HODEI_LOG_FORMAT": "text", **ANY_METRICS_PORT},
}
_TRACEBACK = b"Traceback (most recent call last)"


@dataclass
class ChaosPlatform:
    launcher: LocalLauncher
    profile: str
    #: Bytes already read of each log file (tracebacks are counted per trial).
    _log_offsets: dict[Path, int] = field(default_factory=dict)

    @classmethod
    async def start(cls, profile: str, workers: int = 2, slots: int = 8) -> ChaosPlatform:
        run_dir = Path(tempfile.mkdtemp(prefix="hodei-chaos-", dir="/tmp"))
        options = LocalOptions(
            workers=workers,
            slots=slots,
            run_dir=run_dir,
            run_settings=PROFILES[profile],
            start_timeout_s=60.0,
        )
        launcher = LocalLauncher(options)
        await asyncio.to_thread(launcher.start)
        return cls(launcher, profile)

    async def stop(self) -> None:
        await asyncio.to_thread(self.launcher.stop)

    # -- facts ------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        assert self.launcher.deployment is not None
        return self.launcher.deployment.database_url

    @property
    def address(self) -> str:
        assert self.launcher.deployment is not None
        return self.launcher.deployment.server_address

    @property
    def token(self) -> str:
        assert self.launcher.deployment is not None
        return self.launcher.deployment.token

    @property
    def run_dir(self) -> Path:
        return self.launcher.run_dir

    def processes(self, role: str) -> list[ProcessInfo]:
        assert self.launcher.deployment is not None
        return [p for p in self.launcher.deployment.processes if p.role == role]

    def miss_window_s(self) -> float:
        """How long a silent worker lives before it is LOST, under this profile."""
        settings = PROFILES[self.profile]
        interval = float(settings.get("HODEI_HEARTBEAT_INTERVAL", 5.0))
        return interval * int(settings.get("HODEI_HEARTBEAT_MISS_LIMIT", 3))

    def new_tracebacks(self) -> int:
        """Tracebacks written to any process log since the last call."""
        found = 0
        for path in sorted(self.launcher.log_dir.glob("*.log")):
            offset = self._log_offsets.get(path, 0)
            with path.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            self._log_offsets[path] = offset + len(chunk)
            found += chunk.count(_TRACEBACK)
        return found

    async def running_by_worker_pid(self) -> dict[int, list[str]]:
        """The jobs each live worker process runs now, by its pid."""
        async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
            rows = await (
                await conn.execute(
                    "SELECT w.pid, j.id::text FROM jobs j JOIN workers w ON w.id = j.worker_id"
                    " WHERE j.state = 'RUNNING'"
                )
            ).fetchall()
        out: dict[int, list[str]] = {}
        for pid, job_id in rows:
            out.setdefault(int(pid), []).append(job_id)
        return out

    # -- faults -------------------------------------------------------------------
    async def kill(self, info: ProcessInfo) -> None:
        """SIGKILL a process of the platform (its process group)."""
        assert info.pid is not None
        await asyncio.to_thread(self.launcher.kill_process, info.pid)
        await wait_gone_async(info.pid, 10)
        assert self.launcher.deployment is not None
        self.launcher.deployment.processes.remove(info)

    async def terminate(self, info: ProcessInfo, grace_s: float = 30.0) -> None:
        """SIGTERM a process and wait for it to end (a clean stop)."""
        assert info.pid is not None
        os.killpg(info.pid, signal.SIGTERM)
        await wait_gone_async(info.pid, grace_s)
        assert self.launcher.deployment is not None
        self.launcher.deployment.processes.remove(info)

    async def start_server(
        self, port: int | None = None, name: str = "server"
    ) -> tuple[ProcessInfo, str]:
        """A server on `port` (the killed one's, to restart it), or a replica on a free
        port; returns it with its address once it serves."""
        info, address = await asyncio.to_thread(
            self.launcher.start_server, self.database_url, port, name
        )
        assert self.launcher.deployment is not None
        self.launcher.deployment.processes.append(info)
        return info, address

    async def start_worker(self, address: str | None = None, wait: bool = False) -> ProcessInfo:
        return await asyncio.to_thread(self.launcher.start_worker, wait, address)

    async def stop_database(self) -> None:
        await asyncio.to_thread(self.launcher.stop_database)

    async def start_database(self) -> None:
        await asyncio.to_thread(self.launcher.start_database)
