"""The worker process: the agent, its stream client and heartbeat as supervised
tasks, and a graceful shutdown on SIGINT/SIGTERM (hodei.worker.shutdown).

`run(settings)` is what `hodei worker` and `python -m hodei.worker` call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping

from hodei import exit_codes
from hodei.api.v1 import workers_pb2
from hodei.errors import HodeiError
from hodei.metrics import MetricsEndpoint, WorkerMetrics, metrics_host
from hodei.settings import Settings
from hodei.worker.agent import WorkerAgent
from hodei.worker.connection import StreamClient
from hodei.worker.guard import JobGuard
from hodei.worker.heartbeat import heartbeat_loop
from hodei.worker.shutdown import drain, flush, stop_jobs
from hodei.worker.spawn import make_descriptors_private

logger = logging.getLogger(__name__)

#: Delay before restarting a supervised loop that died.
RESTART_DELAY = 1.0
#: What the worker tells the server when it stops on purpose (SIGTERM, SIGINT).
_BYE = "the worker stopped on a signal"


async def supervise(name: str, loop: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """Run `loop` until `stop`; if it dies, log why and start it again."""
    while not stop.is_set():
        try:
            await loop()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("worker task %s died; restarting it", name, extra={"task": name})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RESTART_DELAY)


class WorkerService:
    def __init__(
        self,
        settings: Settings,
        base_env: Mapping[str, str],
        guard: JobGuard | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or WorkerMetrics()
        self.agent = WorkerAgent(settings, base_env, guard, self.metrics)
        self.client = StreamClient(settings, self.agent)
        self.shutdown = asyncio.Event()  # set by a signal: start the graceful stop
        self._stop_stream = asyncio.Event()
        self._stop_heartbeat = asyncio.Event()
        self._signals = 0

    def request_shutdown(self) -> None:
        self._signals += 1
        if self._signals == 1:
            logger.info(
                "shutdown requested: finishing running jobs",
                extra={"worker_id": self.agent.worker_id or None},
            )
            self.shutdown.set()
        else:  # a second Ctrl-C: no more grace
            logger.warning(
                "second shutdown request: stopping jobs now",
                extra={"worker_id": self.agent.worker_id or None},
            )
            stop_jobs(self.agent, force=True)

    async def run(self) -> None:
        if self.settings.faults.drop_logs:
            logger.warning(
                "FAULT INJECTION: fault_drop_logs is on; job output will not be streamed"
            )
        if self.settings.faults.clock_offset_s:
            logger.warning(
                "FAULT INJECTION: the clock sent to the server is off by %.3f s",
                self.settings.faults.clock_offset_s,
            )
        logger.info(
            "worker starting: server=%s slots=%d",
            self.settings.server.address,
            self.settings.worker.slots,
        )
        stream = asyncio.create_task(
            supervise("stream", lambda: self.client.run(self._stop_stream), self._stop_stream),
            name="worker-stream",
        )
        heartbeat = asyncio.create_task(
            supervise(
                "heartbeat",
                lambda: heartbeat_loop(self.agent, self._stop_heartbeat),
                self._stop_heartbeat,
            ),
            name="worker-heartbeat",
        )
        try:
            await self.shutdown.wait()
            grace = 0.0 if self._signals > 1 else self.settings.worker.shutdown_grace
            # The server stops assigning to us (DRAINING) while running jobs finish; once
            # drain() has marked the agent draining, it repeats this on every new stream.
            self.agent.send(workers_pb2.WorkerMessage(draining=workers_pb2.Draining()))
            await drain(self.agent, grace)
            if self.agent.connected:
                timeout = self.settings.worker.flush_timeout
                if await flush(self.agent, timeout):
                    # Everything confirmed: say goodbye, so the server records TERMINATED
                    # instead of waiting for our heartbeats to stop and calling us LOST.
                    self.agent.send(
                        workers_pb2.WorkerMessage(goodbye=workers_pb2.Goodbye(reason=_BYE))
                    )
                    await flush(self.agent, timeout)
                await self.client.close(timeout)
            elif self.agent.held:
                logger.warning(
                    "server unreachable at shutdown: %d attempt(s) not reported; the server "
                    "will requeue them when this worker's heartbeat deadline passes",
                    len(self.agent.held),
                    extra={"worker_id": self.agent.worker_id or None},
                )
        finally:
            self._stop_heartbeat.set()
            self._stop_stream.set()
            await asyncio.gather(stream, heartbeat, return_exceptions=True)
        logger.info("worker stopped", extra={"worker_id": self.agent.worker_id or None})


def run(settings: Settings, base_env: Mapping[str, str] | None = None) -> int:
    """Run a worker until SIGINT/SIGTERM; returns the process exit code.

    `base_env` is the environment jobs inherit (their own env is merged over it);
    the entry point passes os.environ. Logging is configured by the caller.
    """
    if base_env is None:
        import os

        # Entry-point boundary: jobs inherit the worker's environment, except Hodei's
        # own settings (a database URL with its password has no business in a job).
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}

    metrics = WorkerMetrics()
    endpoint: MetricsEndpoint | None = None
    if settings.metrics.enabled:
        endpoint = MetricsEndpoint(
            metrics.registry, metrics_host(settings), settings.metrics.worker_port, "worker"
        )
        try:
            endpoint.start()
        except HodeiError as err:
            print(f"hodei worker: error: {err}", file=sys.stderr)
            return exit_codes.for_error(err)

    # Jobs are spawned without closing the worker's descriptors (hodei.worker.spawn):
    # whatever this process was handed must not reach them.
    private = make_descriptors_private()
    if private:
        logger.info("%d inherited descriptor(s) made close-on-exec", private)
    # Started before gRPC's threads exist; kills our jobs if this process is killed.
    guard = JobGuard.start()

    async def main() -> None:
        service = WorkerService(settings, base_env, guard, metrics)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.request_shutdown)
        try:
            await service.run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    finally:
        if guard is not None:
            guard.close()
        if endpoint is not None:
            endpoint.stop()
    return 0
