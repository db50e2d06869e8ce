"""Synchronous driver the scenarios use: queue, get, cancel, follow logs, list workers.

pytest-bdd steps are synchronous, so the driver owns one asyncio event loop in a
background thread for the whole session and submits coroutines to it; every call
has a deadline, so a hung RPC fails the step with a message instead of hanging
the run. The gRPC calls go through `hodei.client.HodeiClient` when it is
importable (the product's own facade), else through the committed stubs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hodei.api.v1 import (
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    platform_pb2,
    platform_pb2_grpc,
    workers_pb2,
    workers_pb2_grpc,
)

T = TypeVar("T")

#: Every job the harness creates carries these labels, so that a live deployment's
#: operators (and `hodei-diagnose`) can tell test jobs from real ones.
TEST_LABELS = {"hodei.io/test": "true"}

RPC_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class JobView:
    id: str
    state: str  # "PENDING", "RUNNING", ...
    attempts: int
    worker_id: str
    exit_code: int | None
    error: str


@dataclass(frozen=True)
class WorkerView:
    id: str
    name: str
    pid: int
    state: str
    connected: bool
    running_job_ids: tuple[str, ...]
    last_heartbeat: float  # seconds since the epoch, 0 when none


@dataclass
class LogCapture:
    """Lines received on one SubscribeLogs stream, in order."""

    job_id: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # ("stdout"|"stderr", text)
    sequences: list[int] = field(default_factory=list)
    ended: bool = False
    error: str = ""

    def stdout(self) -> list[str]:
        return [text for kind, text in self.lines if kind == "stdout"]

    def stderr(self) -> list[str]:
        return [text for kind, text in self.lines if kind == "stderr"]


def _job_state(value: int) -> str:
    return str(common_pb2.JobState.Name(value)).removeprefix("JOB_STATE_")


def _worker_state(value: int) -> str:
    return str(common_pb2.WorkerState.Name(value)).removeprefix("WORKER_STATE_")


def _job_view(job: Any) -> JobView:
    return JobView(
        id=job.id, state=_job_state(job.state), attempts=int(job.attempts),
        worker_id=job.worker_id, exit_code=int(job.exit_code) if job.has_exit_code else None,
        error=job.error,
    )


class _StubApi:
    """The calls the harness needs, on a grpc.aio channel (created inside the loop)."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.jobs = jobs_pb2_grpc.JobExecutionServiceStub(self.channel)
        self.logs = logs_pb2_grpc.LogStreamServiceStub(self.channel)
        self.workers = workers_pb2_grpc.WorkerAgentServiceStub(self.channel)
        self.platform = platform_pb2_grpc.PlatformServiceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()


class Driver:
    """One per session. Thread-safe: calls from any thread run on the driver's loop."""

    def __init__(self, server_address: str) -> None:
        self.server_address = server_address
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="hodei-e2e-driver", daemon=True)
        self._thread.start()
        self._api: _StubApi = self._run(self._make_api(), RPC_TIMEOUT_S)

    async def _make_api(self) -> _StubApi:
        return _StubApi(self.server_address)

    def _submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _run(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        future = self._submit(coro)
        try:
            return future.result(timeout=timeout_s)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(f"gRPC call to {self.server_address} took over {timeout_s}s") \
                from None

    def close(self) -> None:
        try:
            self._run(self._api.close(), RPC_TIMEOUT_S)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    # -- jobs -----------------------------------------------------------------
    def queue(self, command: list[str], *, timeout_s: float = 0.0, max_attempts: int = 0,
              name: str = "", env: dict[str, str] | None = None) -> JobView:
        spec = jobs_pb2.JobSpec(command=command, timeout_seconds=timeout_s,
                                max_attempts=max_attempts, name=name, labels=TEST_LABELS,
                                env=env or {})

        async def call() -> JobView:
            reply = await self._api.jobs.QueueJob(jobs_pb2.QueueJobRequest(spec=spec),
                                                  timeout=RPC_TIMEOUT_S)
            return _job_view(reply.job)

        return self._run(call(), RPC_TIMEOUT_S + 1)

    def get(self, job_id: str) -> JobView:
        async def call() -> JobView:
            job = await self._api.jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job_id),
                                              timeout=RPC_TIMEOUT_S)
            return _job_view(job)

        return self._run(call(), RPC_TIMEOUT_S + 1)

    def cancel(self, job_id: str, reason: str = "cancelled by the e2e harness") -> JobView:
        async def call() -> JobView:
            reply = await self._api.jobs.CancelJob(
                jobs_pb2.CancelJobRequest(job_id=job_id, reason=reason), timeout=RPC_TIMEOUT_S)
            return _job_view(reply.job)

        return self._run(call(), RPC_TIMEOUT_S + 1)

    # -- logs -----------------------------------------------------------------
    def follow_logs(self, job_id: str, timeout_s: float) -> Future[LogCapture]:
        """Start SubscribeLogs (history then live) in the background; the future
        resolves when the server ends the stream (the job ended) or on error."""
        capture = LogCapture(job_id=job_id)

        async def call() -> LogCapture:
            request = logs_pb2.SubscribeLogsRequest(job_id=job_id, include_history=True)
            try:
                async for line in self._api.logs.SubscribeLogs(request, timeout=timeout_s):
                    capture.lines.append(("stderr" if line.is_stderr else "stdout", line.line))
                    capture.sequences.append(int(line.sequence))
                capture.ended = True
            except grpc.aio.AioRpcError as exc:
                capture.error = f"{exc.code().name}: {exc.details()}"
            return capture

        return self._submit(call())

    def get_logs(self, job_id: str) -> list[tuple[str, str]]:
        async def call() -> list[tuple[str, str]]:
            reply = await self._api.logs.GetLogs(logs_pb2.GetLogsRequest(job_id=job_id),
                                                 timeout=RPC_TIMEOUT_S)
            return [("stderr" if ln.is_stderr else "stdout", ln.line) for ln in reply.lines]

        return self._run(call(), RPC_TIMEOUT_S + 1)

    # -- platform ---------------------------------------------------------------
    def workers(self, include_gone: bool = False) -> list[WorkerView]:
        async def call() -> list[WorkerView]:
            reply = await self._api.workers.ListWorkers(
                workers_pb2.ListWorkersRequest(include_gone=include_gone), timeout=RPC_TIMEOUT_S)
            return [
                WorkerView(
                    id=w.id, name=w.name, pid=int(w.pid), state=_worker_state(w.state),
                    connected=w.connected, running_job_ids=tuple(w.running_job_ids),
                    last_heartbeat=w.last_heartbeat.ToDatetime().timestamp()
                    if w.HasField("last_heartbeat") else 0.0,
                )
                for w in reply.workers
            ]

        return self._run(call(), RPC_TIMEOUT_S + 1)

    def health(self, service: str = "") -> str:
        async def call() -> str:
            reply = await self._api.health_stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT_S)
            return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

        return self._run(call(), RPC_TIMEOUT_S + 1)

    def server_info(self) -> dict[str, Any]:
        async def call() -> dict[str, Any]:
            info = await self._api.platform.GetServerInfo(platform_pb2.GetServerInfoRequest(),
                                                          timeout=RPC_TIMEOUT_S)
            return {
                "version": info.version, "server_id": info.server_id,
                "dispatcher_enabled": info.dispatcher_enabled,
                "outbox_relay_enabled": info.outbox_relay_enabled,
                "connected_workers": int(info.connected_workers),
                "schema_version": int(info.schema_version),
            }

        return self._run(call(), RPC_TIMEOUT_S + 1)
