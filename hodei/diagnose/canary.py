"""The server-facing side of the diagnosis, through the platform's own client facade
(`hodei.client.HodeiClient`): health and server info, and the canary — one test-tagged
job followed through dispatch, execution and log streaming.

The checks are synchronous; each call here runs its own short event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hodei.client import NO_RETRY, ClientTLS, HodeiClient
from hodei.errors import HodeiError, Unavailable

CANARY_STDOUT = "hodei-canary stdout line"
CANARY_STDERR = "hodei-canary stderr line"
TEST_LABELS = {"hodei.io/test": "true", "hodei.io/canary": "true"}


@dataclass
class ServerProbe:
    reachable: bool
    status: str = ""  # grpc.health.v1 status name
    error: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    info_error: str = ""


async def _probe_server(
    address: str, timeout_s: float, tls: ClientTLS | None, token: str
) -> ServerProbe:
    async with HodeiClient(address, deadline=timeout_s, tls=tls, token=token) as client:
        try:
            status = await client.health(deadline=timeout_s)
        except Unavailable as exc:
            return ServerProbe(reachable=False, error=str(exc))
        except HodeiError as exc:
            return ServerProbe(reachable=True, status=f"{exc.code}: {exc}")
        probe = ServerProbe(reachable=True, status=status)
        try:
            info = await client.server_info()
            probe.info = {
                "version": info.version,
                "server_id": info.server_id,
                "dispatcher_enabled": info.dispatcher_enabled,
                "outbox_relay_enabled": info.outbox_relay_enabled,
                "connected_workers": info.connected_workers,
                "schema_version": info.schema_version,
                "insecure": info.insecure,
            }
        except HodeiError as exc:
            probe.info_error = str(exc)
        return probe


def probe_server(
    address: str, timeout_s: float, tls: ClientTLS | None = None, token: str = ""
) -> ServerProbe:
    """grpc.health.v1 Check (open), then PlatformService.GetServerInfo (with `token`)."""
    return asyncio.run(_probe_server(address, timeout_s, tls, token))


@dataclass
class CanaryResult:
    job_id: str = ""
    state: str = ""
    exit_code: int | None = None
    error: str = ""
    # Phases measured from the server's own timestamps (seconds).
    dispatch_s: float | None = None  # created -> assigned
    start_s: float | None = None  # assigned -> running
    execution_s: float | None = None  # running -> finished
    total_s: float | None = None  # queue call -> log stream ended
    first_log_s: float | None = None  # queue call -> first line received
    lines: list[tuple[bool, str]] = field(default_factory=list)  # (is_stderr, line)
    timed_out: bool = False

    @property
    def stdout_ok(self) -> bool:
        return (False, CANARY_STDOUT) in self.lines

    @property
    def stderr_ok(self) -> bool:
        return (True, CANARY_STDERR) in self.lines


def _delta(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else round((b - a).total_seconds(), 4)


async def _run_canary(
    address: str, timeout_s: float, tls: ClientTLS | None, token: str
) -> CanaryResult:
    result = CanaryResult()
    script = f"echo '{CANARY_STDOUT}'; echo '{CANARY_STDERR}' >&2"
    # Sent once: a doctor reports a server that does not answer, it does not wait for it.
    async with HodeiClient(
        address, deadline=5.0, submit_retry=NO_RETRY, tls=tls, token=token
    ) as client:
        start = time.perf_counter()
        try:
            job = await client.queue_job(
                ["/bin/sh", "-c", script],
                name="hodei-diagnose-canary",
                timeout_seconds=max(1.0, timeout_s),
                max_attempts=1,
                labels=TEST_LABELS,
            )
        except HodeiError as exc:
            result.error = f"QueueJob: {exc}"
            return result
        result.job_id = job.id
        try:
            async with asyncio.timeout(timeout_s):
                async for line in client.subscribe_logs(job.id, include_history=True):
                    if result.first_log_s is None:
                        result.first_log_s = round(time.perf_counter() - start, 4)
                    result.lines.append((line.is_stderr, line.line))
        except TimeoutError:
            result.timed_out = True
        except HodeiError as exc:
            result.error = f"SubscribeLogs: {exc}"
        result.total_s = round(time.perf_counter() - start, 4)
        try:
            final = await client.get_job(job.id)
        except HodeiError as exc:
            result.error = result.error or f"GetJob: {exc}"
            return result
        result.state = final.state.value
        result.exit_code = final.exit_code
        result.dispatch_s = _delta(final.created_at, final.assigned_at)
        result.start_s = _delta(final.assigned_at, final.started_at)
        result.execution_s = _delta(final.started_at, final.finished_at)
        if not final.state.is_final:
            # Leave nothing behind: a canary that did not finish is cancelled.
            with contextlib.suppress(HodeiError):
                await client.cancel_job(
                    job.id, force=True, reason="hodei-diagnose canary timed out"
                )
    return result


def run_canary(
    address: str, timeout_s: float, tls: ClientTLS | None = None, token: str = ""
) -> CanaryResult:
    """Queue the canary, follow its logs until the stream ends or `timeout_s` passes."""
    return asyncio.run(_run_canary(address, timeout_s, tls, token))
