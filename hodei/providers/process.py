"""The `process` provider: workers as child processes of the server
(`python -m hodei.worker`, or `process.command`). For a laptop without Docker and for
the tests, where the whole scaling loop then runs for real.

Its workers live and die with the server that started them: another replica cannot
stop them (`terminate` of an unknown handle does nothing), and a restarted server
does not find them again. Use the Docker or Kubernetes provider across replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hodei.providers.base import (
    LABEL_JOB,
    LABEL_PROVIDER,
    LABEL_WORKER_NAME,
    ProviderHealth,
    ProvisionedState,
    ProvisionedWorker,
    ProvisioningError,
    ProvisionRequest,
)
from hodei.providers.config import ProviderConfig

logger = logging.getLogger(__name__)

#: A worker that exits this soon after its start failed to start (bad flags, no module).
_EARLY_EXIT = 0.2
#: SIGTERM -> SIGKILL: a scaled-down worker is idle, its drain takes milliseconds.
_STOP_GRACE = 15.0


class ProcessProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.config = config
        self._workers: dict[str, tuple[asyncio.subprocess.Process, ProvisionedWorker]] = {}
        self.log_dir = Path(tempfile.gettempdir()) / "hodei-provisioned"

    def command(self, request: ProvisionRequest) -> list[str]:
        base = list(self.config.process.command or [sys.executable, "-m", "hodei.worker"])
        return [
            *base,
            "--server",
            request.server_address,
            "--name",
            request.worker_name,
            "--slots",
            str(request.slots),
        ]

    def environment(self, request: ProvisionRequest) -> dict[str, str]:
        # The server's own HODEI_* variables are not the worker's (its database URL, its
        # providers file, its metrics port): only what the request and the entry say.
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HODEI_")}
        # Several workers on one host: each takes any free /metrics port unless told.
        env["HODEI_WORKER_METRICS_PORT"] = "0"
        env.update(self.config.process.env)
        env.update(request.env)
        env["HODEI_WORKER_LABELS"] = ",".join(f"{k}={v}" for k, v in request.labels.items())
        if request.token:
            env["HODEI_TOKEN"] = request.token
        return env

    async def provision(self, request: ProvisionRequest) -> ProvisionedWorker:
        argv = self.command(request)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{request.worker_name}.log"
        try:
            with log_path.open("ab") as log:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    env=self.environment(request),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,  # a Ctrl-C to the server is not the worker's
                )
        except OSError as exc:
            raise ProvisioningError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
        with contextlib.suppress(TimeoutError):
            code = await asyncio.wait_for(process.wait(), _EARLY_EXIT)
            raise ProvisioningError(
                f"the worker process exited at once with code {code} (output: {log_path})"
            )
        labels = {
            **request.labels,
            LABEL_PROVIDER: self.name,
            LABEL_WORKER_NAME: request.worker_name,
            **({LABEL_JOB: str(request.job_id)} if request.job_id else {}),
        }
        worker = ProvisionedWorker(
            provider=self.name,
            handle=str(process.pid),
            worker_name=request.worker_name,
            state=ProvisionedState.RUNNING,
            created_at=datetime.now(UTC),
            labels=labels,
        )
        self._workers[worker.handle] = (process, worker)
        logger.info(
            "worker process started",
            extra={"provider": self.name, "pid": process.pid, "worker_name": request.worker_name},
        )
        return worker

    async def terminate(self, handle: str) -> None:
        entry = self._workers.pop(handle, None)
        if entry is None:
            return  # gone already, or another server's
        process, _ = entry
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), _STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    async def list(self) -> list[ProvisionedWorker]:
        alive = []
        for handle, (process, worker) in list(self._workers.items()):
            if process.returncode is not None:
                del self._workers[handle]
                continue
            alive.append(worker)
        return alive

    async def health(self) -> ProviderHealth:
        return ProviderHealth(True, f"local processes ({len(await self.list())} running)")

    async def capacity(self) -> int:
        return max(self.config.max_workers - len(await self.list()), 0)

    async def close(self) -> None:
        """The server stops: its workers stop with it (they would outlive it otherwise)."""
        await asyncio.gather(*(self.terminate(h) for h in list(self._workers)))
