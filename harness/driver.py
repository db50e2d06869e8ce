"""Synchronous driver the scenarios use: queue, get, cancel, follow logs, list workers.

pytest-bdd steps are synchronous, so the driver owns one asyncio event loop in a
background thread for the whole session and submits coroutines to it; every call
has a deadline, so a hung RPC fails the step with a message instead of hanging
the run. The gRPC calls go through the product's own facade, `hodei.client.HodeiClient`,
so the harness exercises what users use.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hodei.client import ClientTLS, HodeiClient
from hodei.client.views import JobView, WorkerView
from hodei.errors import HodeiError

T = TypeVar("T")

__all__ = ["TEST_LABELS", "Driver", "JobView", "LogCapture", "WorkerView"]

#: Every job the harness creates carries these labels, so that a live deployment's
#: operators (and `hodei-diagnose`) can tell test jobs from real ones.
TEST_LABELS = {"hodei.io/test": "true"}

RPC_TIMEOUT_S = 5.0


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


class Driver:
    """One per session. Thread-safe: calls from any thread run on the driver's loop."""

    def __init__(self, server_address: str, tls: ClientTLS | None = None, token: str = "") -> None:
        self.server_address = server_address
        self.tls = tls
        self._token = token
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="hodei-e2e-driver", daemon=True
        )
        self._thread.start()
        # The client's channel must be created on the loop that will use it.
        self._client: HodeiClient = self._run(self._make_client(), RPC_TIMEOUT_S)

    async def _make_client(self) -> HodeiClient:
        return HodeiClient(
            self.server_address, deadline=RPC_TIMEOUT_S, tls=self.tls, token=self._token
        )

    def _submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _run(self, coro: Coroutine[Any, Any, T], timeout_s: float = RPC_TIMEOUT_S + 1) -> T:
        future = self._submit(coro)
        try:
            return future.result(timeout=timeout_s)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"gRPC call to {self.server_address} took over {timeout_s}s"
            ) from None

    def close(self) -> None:
        try:
            self._run(self._client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    # -- jobs -----------------------------------------------------------------
    def queue(
        self,
        command: list[str],
        *,
        timeout_s: float = 0.0,
        max_attempts: int = 0,
        name: str = "",
        env: dict[str, str] | None = None,
        selector: dict[str, str] | None = None,
    ) -> JobView:
        return self._run(
            self._client.queue_job(
                command,
                env=env,
                timeout_seconds=timeout_s or None,
                max_attempts=max_attempts,
                name=name,
                labels=TEST_LABELS,
                selector=selector,
            )
        )

    def get(self, job_id: str) -> JobView:
        return self._run(self._client.get_job(job_id))

    def cancel(self, job_id: str, reason: str = "cancelled by the e2e harness") -> JobView:
        return self._run(self._client.cancel_job(job_id, reason=reason))

    # -- logs -----------------------------------------------------------------
    def follow_logs(self, job_id: str, timeout_s: float) -> Future[LogCapture]:
        """Start SubscribeLogs (history then live) in the background; the future
        resolves when the server ends the stream (the job ended), on error, or after
        `timeout_s` (then `ended` is False)."""
        capture = LogCapture(job_id=job_id)

        async def consume() -> None:
            async for line in self._client.subscribe_logs(job_id, include_history=True):
                capture.lines.append(("stderr" if line.is_stderr else "stdout", line.line))
                capture.sequences.append(int(line.sequence))
            capture.ended = True

        async def call() -> LogCapture:
            try:
                await asyncio.wait_for(consume(), timeout_s)
            except TimeoutError:
                capture.error = f"the stream was still open after {timeout_s}s"
            except HodeiError as exc:
                capture.error = f"{exc.code}: {exc}"
            return capture

        return self._submit(call())

    def get_logs(self, job_id: str) -> list[tuple[str, str]]:
        page = self._run(self._client.get_logs(job_id))
        return [("stderr" if ln.is_stderr else "stdout", ln.line) for ln in page.lines]

    # -- platform ---------------------------------------------------------------
    def workers(self, include_gone: bool = False) -> list[WorkerView]:
        return self._run(self._client.list_workers(include_gone=include_gone))

    def health(self, service: str = "") -> str:
        return self._run(self._client.health(service))

    def server_info(self) -> dict[str, Any]:
        info = self._run(self._client.server_info())
        return {
            "version": info.version,
            "server_id": info.server_id,
            "dispatcher_enabled": info.dispatcher_enabled,
            "outbox_relay_enabled": info.outbox_relay_enabled,
            "connected_workers": int(info.connected_workers),
            "schema_version": int(info.schema_version),
        }
