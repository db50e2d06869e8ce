"""HodeiClient: the async facade over the Hodei gRPC API used by the CLI, the
benchmark and tests.

Proto types stay inside this package: calls take plain Python values and return
the views of `hodei.client.views`; every grpc.RpcError is translated once into
hodei.errors (see rpc_errors). Unary calls have a deadline; the log stream has
none (a job may run for hours) but resumes by sequence number after a dropped
connection, so a follower never sees a gap or a duplicate. Submissions carry an
idempotency key and are retried with it when the server did not answer
(hodei.client.retries): a retry never queues a job twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from hodei.api.v1 import (
    jobs_pb2,
    jobs_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    platform_pb2,
    platform_pb2_grpc,
    workers_pb2,
    workers_pb2_grpc,
)
from hodei.client import convert
from hodei.client.channel import MIB, channel_options, token_metadata
from hodei.client.retries import (
    DEFAULT_RETRY,
    NO_RETRY,
    QUEUE_JOB_RETRY_CODES,
    QUEUE_JOBS_RETRY_CODES,
    RetryPolicy,
    call_with_retries,
)
from hodei.client.rpc_errors import translate, unreachable
from hodei.client.views import (
    JobView,
    LogLineView,
    LogsPage,
    ProviderView,
    QueueView,
    ServerInfoView,
    WorkerView,
)
from hodei.domain.jobs import JobState
from hodei.errors import HodeiError, InvalidArgument, Unavailable
from hodei.tls import ClientTLS, aio_channel
from hodei.tracing import CORRELATION_ID, JOB_ID, current_metadata

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

#: Default deadline of a unary call, in seconds.
DEFAULT_DEADLINE = 10.0
# A dropped log stream is resumed this many times in a row (backing off) before
# the follower gives up with Unavailable.
_STREAM_RESUMES = 8
_RESUME_BACKOFF_MAX = 2.0
#: What ListJobs returns when no limit is asked (the server's default page size).
_DEFAULT_LIST = 50


def check_address(address: str) -> str:
    """HOST:PORT with a numeric port in range, or InvalidArgument."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"invalid server address {address!r}: expected HOST:PORT")
    return address.strip()


def new_idempotency_key() -> str:
    """A key for one logical submission: random, so two submissions never share one."""
    return uuid.uuid4().hex


class HodeiClient:
    """`async with HodeiClient("127.0.0.1:50051") as client: await client.get_job(id)`.

    `submit_retry`: how `queue_job` and `queue_jobs` retry a call the server did not
    answer (UNAVAILABLE; for QueueJob also DEADLINE_EXCEEDED), with the same
    idempotency key: by default for up to 30 s, backing off from 0.1 s to 2 s.
    `NO_RETRY` sends each once. The other calls are sent once.

    `tls`: dial with TLS (`ClientTLS.from_files(ca)`, or `client_tls(settings.tls)`);
    None: plaintext. `token`: sent as `authorization: Bearer <token>` on every call.

    `tracing`: each submission is a `submit` span of the current OpenTelemetry trace
    (a new one outside a span), and its context goes to the server in the call's
    metadata (W3C `traceparent`): the job's spans on the server and the worker join it.
    The process's tracer provider says where spans go (hodei.tracing.setup_tracing)."""

    def __init__(
        self,
        address: str,
        *,
        deadline: float = DEFAULT_DEADLINE,
        keepalive_time_ms: int = 10_000,
        keepalive_timeout_ms: int = 60_000,
        submit_retry: RetryPolicy = DEFAULT_RETRY,
        tls: ClientTLS | None = None,
        token: str = "",
        tracing: bool = False,
    ) -> None:
        self.address = check_address(address)
        self.tracing = tracing
        self.deadline = deadline
        self.submit_retry = submit_retry
        self.tls = tls
        self._channel = aio_channel(
            self.address,
            channel_options(
                keepalive_time_ms,
                keepalive_timeout_ms,
                # GetLogs may return up to 10,000 lines of up to 1 MiB each.
                max_receive_bytes=64 * MIB,
                max_send_bytes=16 * MIB,
                # grpc's own reconnect backoff grows to 120 s: a retried submission
                # would keep failing at once long after the server is back.
                reconnect_max_backoff_ms=int(submit_retry.max_backoff * 1000),
            ),
            tls,
        )
        self._metadata = token_metadata(token)
        self._jobs = jobs_pb2_grpc.JobExecutionServiceStub(self._channel)
        self._logs = logs_pb2_grpc.LogStreamServiceStub(self._channel)
        self._workers = workers_pb2_grpc.WorkerAgentServiceStub(self._channel)
        self._platform = platform_pb2_grpc.PlatformServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._batched_logs = True

    async def __aenter__(self) -> HodeiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(
        self,
        method: Any,
        request: Any,
        deadline: float | None = None,
        metadata: tuple[tuple[str, str], ...] | None = None,
    ) -> Any:
        timeout = deadline or self.deadline
        try:
            return await method(request, timeout=timeout, metadata=metadata or self._metadata)
        except grpc.RpcError as err:
            raise translate(err, self.address, timeout, tls=self.tls) from None

    # ---- jobs -------------------------------------------------------------------

    async def queue_job(
        self,
        command: Iterable[str],
        *,
        env: Mapping[str, str] | None = None,
        working_dir: str = "",
        timeout_seconds: float | None = None,
        max_attempts: int = 0,
        name: str = "",
        labels: Mapping[str, str] | None = None,
        correlation_id: str = "",
        idempotency_key: str | None = None,
        secret_env: Mapping[str, str] | None = None,
        selector: Mapping[str, str] | None = None,
    ) -> JobView:
        """Queue one job. `idempotency_key`: names this submission (1-128 visible ASCII
        characters); None makes a new one for this call, kept across its retries; ""
        sends none, and then the call is not retried (a retry could queue it twice).
        `secret_env`: environment variables whose values are secret (encrypted at rest,
        masked in the job's output, answered as "***"); the server needs HODEI_SECRET_KEY."""
        spec = jobs_pb2.JobSpec(
            command=list(command),
            env=dict(env or {}),
            working_dir=working_dir,
            timeout_seconds=timeout_seconds or 0.0,
            max_attempts=max_attempts,
            name=name,
            labels=dict(labels or {}),
            secret_env=dict(secret_env or {}),
            selector=dict(selector or {}),
        )
        key = new_idempotency_key() if idempotency_key is None else idempotency_key
        request = jobs_pb2.QueueJobRequest(
            spec=spec, correlation_id=correlation_id, idempotency_key=key
        )
        response = await self._submit(self._jobs.QueueJob, request, key, QUEUE_JOB_RETRY_CODES)
        return convert.job_view(response.job)

    async def _traced_submit(
        self, method: Any, request: Any, key: str, codes: frozenset[grpc.StatusCode]
    ) -> Any:
        """_submit inside a `submit` client span whose context the call carries."""
        name = type(request).__name__.removesuffix("Request")
        with tracer.start_as_current_span(
            "submit", kind=SpanKind.CLIENT, attributes={"rpc.method": name}
        ) as span:
            metadata = (*(self._metadata or ()), *current_metadata())
            response = await self._send_submission(method, request, key, codes, metadata)
            jobs = response.jobs if name == "QueueJobs" else [response.job]
            if len(jobs) == 1:
                span.set_attributes({JOB_ID: jobs[0].id, CORRELATION_ID: jobs[0].correlation_id})
            else:
                span.set_attribute("hodei.job_count", len(jobs))
            return response

    async def queue_jobs(
        self, jobs: Iterable[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> list[JobView]:
        """Queue many jobs in one call, all or none (at most 1000): each item holds
        queue_job's keyword arguments (`command` required; not `idempotency_key`: one
        key names the whole batch, as in queue_job)."""
        key = new_idempotency_key() if idempotency_key is None else idempotency_key
        request = jobs_pb2.QueueJobsRequest(
            idempotency_key=key,
            jobs=[
                jobs_pb2.QueueJobRequest(
                    spec=jobs_pb2.JobSpec(
                        command=list(job["command"]),
                        env=dict(job.get("env") or {}),
                        working_dir=job.get("working_dir", ""),
                        timeout_seconds=job.get("timeout_seconds") or 0.0,
                        max_attempts=job.get("max_attempts", 0),
                        name=job.get("name", ""),
                        labels=dict(job.get("labels") or {}),
                        secret_env=dict(job.get("secret_env") or {}),
                        selector=dict(job.get("selector") or {}),
                    ),
                    correlation_id=job.get("correlation_id", ""),
                )
                for job in jobs
            ],
        )
        response = await self._submit(self._jobs.QueueJobs, request, key, QUEUE_JOBS_RETRY_CODES)
        return [convert.job_view(job) for job in response.jobs]

    async def _submit(
        self, method: Any, request: Any, key: str, codes: frozenset[grpc.StatusCode]
    ) -> Any:
        if self.tracing:
            return await self._traced_submit(method, request, key, codes)
        return await self._send_submission(method, request, key, codes, self._metadata)

    async def _send_submission(
        self,
        method: Any,
        request: Any,
        key: str,
        codes: frozenset[grpc.StatusCode],
        metadata: tuple[tuple[str, str], ...] | None,
    ) -> Any:
        policy = self.submit_retry if key else NO_RETRY
        if not policy.enabled:
            return await self._call(method, request, metadata=metadata)
        return await call_with_retries(
            lambda: method(request, timeout=self.deadline, metadata=metadata),
            policy=policy,
            retry_codes=codes,
            address=self.address,
            deadline=self.deadline,
            what=f"{type(request).__name__.removesuffix('Request')} (key {key})",
            tls=self.tls,
        )

    async def get_job(self, job_id: str) -> JobView:
        job = await self._call(self._jobs.GetJob, jobs_pb2.GetJobRequest(job_id=job_id))
        return convert.job_view(job)

    async def list_jobs(
        self,
        states: Iterable[JobState] = (),
        limit: int = 0,
        labels: Mapping[str, str] | None = None,
    ) -> list[JobView]:
        """Up to `limit` jobs (0: the server's default of 50), newest first, following
        the server's pages: a page also ends at a byte budget, so it may hold fewer."""
        wanted = limit or _DEFAULT_LIST
        jobs: list[JobView] = []
        token = ""
        while len(jobs) < wanted:
            page, token = await self.list_jobs_page(states, wanted - len(jobs), labels, token)
            jobs += page
            if not token:
                break
        return jobs

    async def list_jobs_page(
        self,
        states: Iterable[JobState] = (),
        limit: int = 0,
        labels: Mapping[str, str] | None = None,
        page_token: str = "",
    ) -> tuple[list[JobView], str]:
        """One page of ListJobs and the token of the next one ("" after the last)."""
        request = jobs_pb2.ListJobsRequest(
            states=[convert.JOB_STATE_TO_PROTO[s] for s in states],
            limit=limit,
            labels=dict(labels or {}),
            page_token=page_token,
        )
        response = await self._call(self._jobs.ListJobs, request)
        return [convert.job_view(j) for j in response.jobs], response.next_page_token

    async def cancel_job(self, job_id: str, *, force: bool = False, reason: str = "") -> JobView:
        request = jobs_pb2.CancelJobRequest(job_id=job_id, force=force, reason=reason)
        response = await self._call(self._jobs.CancelJob, request)
        return convert.job_view(response.job)

    # ---- logs -------------------------------------------------------------------

    async def get_logs(self, job_id: str, after_sequence: int = 0, limit: int = 0) -> LogsPage:
        request = logs_pb2.GetLogsRequest(job_id=job_id, after_sequence=after_sequence, limit=limit)
        response = await self._call(self._logs.GetLogs, request)
        return LogsPage([convert.log_line_view(x) for x in response.lines], response.complete)

    async def subscribe_logs(
        self,
        job_id: str,
        *,
        include_history: bool = True,
        tail_lines: int = 0,
        after_sequence: int = 0,
    ) -> AsyncIterator[LogLineView]:
        """History (if asked) then live lines until the job ends, one by one."""
        batches = self.subscribe_log_batches(
            job_id,
            include_history=include_history,
            tail_lines=tail_lines,
            after_sequence=after_sequence,
        )
        async for batch in batches:
            for line in batch:
                yield line

    async def subscribe_log_batches(
        self,
        job_id: str,
        *,
        include_history: bool = True,
        tail_lines: int = 0,
        after_sequence: int = 0,
    ) -> AsyncIterator[list[LogLineView]]:
        """History (if asked) then live lines until the job ends, as many consecutive
        lines per batch as the server had ready.

        Uses SubscribeLogBatches (one gRPC message per batch: at high volume the
        per-message cost dominates), or SubscribeLogs on a server without it. A
        stream dropped by the transport is resumed after the last sequence seen
        (history included, so nothing produced meanwhile is lost); other errors,
        and too many failed resumes in a row, are raised as HodeiError.
        """
        last = after_sequence
        failures = 0
        request = logs_pb2.SubscribeLogsRequest(
            job_id=job_id,
            include_history=include_history,
            tail_lines=tail_lines,
            after_sequence=after_sequence,
            columnar=True,
        )
        while True:
            call = (
                self._logs.SubscribeLogBatches(request, metadata=self._metadata)
                if self._batched_logs
                else self._logs.SubscribeLogs(request, metadata=self._metadata)
            )
            try:
                async for message in call:
                    failures = 0
                    if self._batched_logs:
                        batch = [convert.log_line_view(x) for x in message.lines]
                        batch += convert.log_column_views(message.columns)
                    else:
                        batch = [convert.log_line_view(message)]
                    if batch:
                        last = batch[-1].sequence
                        yield batch
                return
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.UNIMPLEMENTED and self._batched_logs:
                    self._batched_logs = False  # an older server: one line per message
                    continue
                error = translate(err, self.address, tls=self.tls)
                if not isinstance(error, Unavailable) or failures >= _STREAM_RESUMES:
                    raise error from None
                failures += 1
                delay = min(_RESUME_BACKOFF_MAX, 0.1 * 2**failures)
                logger.info(
                    "log stream of job %s dropped (%s); resuming after line %d in %.1f s",
                    job_id,
                    error,
                    last,
                    delay,
                    extra={"job_id": job_id},
                )
                await asyncio.sleep(delay)
                request = logs_pb2.SubscribeLogsRequest(
                    job_id=job_id, include_history=True, after_sequence=last, columnar=True
                )
            finally:
                call.cancel()

    # ---- platform -----------------------------------------------------------------

    async def list_workers(self, include_gone: bool = False) -> list[WorkerView]:
        request = workers_pb2.ListWorkersRequest(include_gone=include_gone)
        response = await self._call(self._workers.ListWorkers, request)
        return [convert.worker_view(w) for w in response.workers]

    async def get_queue(self, limit: int = 0) -> QueueView:
        request = platform_pb2.GetQueueRequest(limit=limit)
        return convert.queue_view(await self._call(self._platform.GetQueue, request))

    async def list_providers(self) -> list[ProviderView]:
        """The providers of workers on demand (admin only)."""
        request = platform_pb2.ListProvidersRequest()
        response = await self._call(self._platform.ListProviders, request)
        return [convert.provider_view(p) for p in response.providers]

    async def server_info(self) -> ServerInfoView:
        request = platform_pb2.GetServerInfoRequest()
        return convert.server_info_view(await self._call(self._platform.GetServerInfo, request))

    async def health(self, service: str = "", deadline: float | None = None) -> str:
        """The grpc.health.v1 status name ("SERVING", "NOT_SERVING", ...)."""
        request = health_pb2.HealthCheckRequest(service=service)
        response = await self._call(self._health.Check, request, deadline)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    async def wait_ready(self, within: float = 10.0) -> None:
        """Wait until the server answers SERVING, or raise Unavailable."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        last: HodeiError | None = None
        while loop.time() < end:
            try:
                if await self.health(deadline=max(0.2, min(2.0, end - loop.time()))) == "SERVING":
                    return
            except HodeiError as err:
                last = err
            await asyncio.sleep(0.1)
        raise unreachable(self.address, f"not SERVING after {within:g} s; {last or ''}".strip())
