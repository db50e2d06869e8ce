"""JobExecutionService and LogStreamService: decode, call a service, encode."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc, logs_pb2, logs_pb2_grpc
from hodei.errors import InvalidArgument, NotFound
from hodei.server.api.auth import current_caller
from hodei.server.api.convert import (
    job_state_from_proto,
    job_to_proto,
    log_columns_to_proto,
    log_lines_to_proto,
    parse_id,
    spec_args,
)
from hodei.server.api.status_codes import server_stream, unary
from hodei.server.job_reads import LIST_PAGE_BYTES, page_token
from hodei.server.models import LogLineRecord
from hodei.server.services import Services
from hodei.tracing import context_from_metadata

tracer = trace.get_tracer(__name__)
_JOBS_SERVICE = jobs_pb2.DESCRIPTOR.services_by_name["JobExecutionService"].full_name


async def owned(services: Services, job_id: uuid.UUID) -> uuid.UUID:
    """`job_id` when the caller may see that job. Another client's job is NOT_FOUND,
    as an unknown one is: a client cannot learn which job ids exist."""
    caller = current_caller()
    if not caller.sees_all_jobs and not caller.may_see(await services.job_reads.job_owner(job_id)):
        raise NotFound(f"job {job_id} not found")
    return job_id


@contextlib.contextmanager
def server_span(on: bool, context: grpc.aio.ServicerContext, method: str) -> Iterator[None]:
    """The server span of a submission, continuing the caller's trace when its metadata
    carries one (W3C `traceparent`); nothing when tracing is off. The enqueue span is its
    child. An error raised inside is recorded on it (before @unary answers it)."""
    if not on:
        yield
        return
    with tracer.start_as_current_span(
        f"{_JOBS_SERVICE}/{method}",
        context=context_from_metadata(context.invocation_metadata()),
        kind=SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": _JOBS_SERVICE, "rpc.method": method},
    ):
        yield


class JobExecutionServicer(jobs_pb2_grpc.JobExecutionServiceServicer):
    def __init__(self, services: Services) -> None:
        self.services = services
        self.tracing = services.settings.tracing.enabled

    @unary
    async def QueueJob(
        self, request: jobs_pb2.QueueJobRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.QueueJobResponse:
        with server_span(self.tracing, context, "QueueJob"):
            if not request.HasField("spec"):
                raise InvalidArgument("spec is required")
            job = await self.services.submission.submit(
                **spec_args(request.spec),
                correlation_id=request.correlation_id,
                idempotency_key=request.idempotency_key,
                owner=current_caller().token_id,
            )
        return jobs_pb2.QueueJobResponse(job=job_to_proto(job))

    @unary
    async def QueueJobs(
        self, request: jobs_pb2.QueueJobsRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.QueueJobsResponse:
        with server_span(self.tracing, context, "QueueJobs"):
            specs = []
            for index, item in enumerate(request.jobs):
                if not item.HasField("spec"):
                    raise InvalidArgument(f"jobs[{index}]: spec is required")
                specs.append({**spec_args(item.spec), "correlation_id": item.correlation_id})
            jobs = await self.services.submission.submit_many(
                specs, idempotency_key=request.idempotency_key, owner=current_caller().token_id
            )
        return jobs_pb2.QueueJobsResponse(jobs=[job_to_proto(job) for job in jobs])

    @unary
    async def GetJob(
        self, request: jobs_pb2.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.Job:
        job = await self.services.job_reads.get_job(parse_id(request.job_id))
        if not current_caller().may_see(job.owner_token_id):
            raise NotFound(f"job {job.id} not found")
        return job_to_proto(job)

    @unary
    async def ListJobs(
        self, request: jobs_pb2.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.ListJobsResponse:
        states = [job_state_from_proto(s) for s in request.states]
        jobs, more = await self.services.job_reads.list_jobs(
            states,
            request.limit,
            dict(request.labels),
            request.page_token,
            owner=current_caller().owner_filter(),
        )
        response = jobs_pb2.ListJobsResponse()
        size = 0
        for job in jobs:
            message = job_to_proto(job)
            # Stop before the page passes its byte budget (it holds at least one job):
            # a response must never exceed a client's receive limit.
            size += message.ByteSize() + 8  # the field's tag and length
            if response.jobs and size > LIST_PAGE_BYTES:
                more = True
                break
            response.jobs.append(message)
        if more:
            response.next_page_token = page_token(jobs[len(response.jobs) - 1])
        return response

    @unary
    async def CancelJob(
        self, request: jobs_pb2.CancelJobRequest, context: grpc.aio.ServicerContext
    ) -> jobs_pb2.CancelJobResponse:
        job_id = await owned(self.services, parse_id(request.job_id))
        job, command = await self.services.transitions.cancel_job(
            job_id, request.reason, request.force
        )
        if command is not None:
            # The holding worker kills the process and reports CANCELLED; if its stream
            # is on another server or gone, the recovery loop forces CANCELLED later.
            self.services.registry.send(job.worker_id, command)
        else:
            self.services.bus.job_changed(job.id)
        return jobs_pb2.CancelJobResponse(job=job_to_proto(job))


class LogStreamServicer(logs_pb2_grpc.LogStreamServiceServicer):
    def __init__(self, services: Services) -> None:
        self.services = services

    async def _follow(
        self, request: logs_pb2.SubscribeLogsRequest
    ) -> AsyncIterator[list[LogLineRecord]]:
        """Both subscribe RPCs read the same ordered pages; they differ only in framing."""
        job_id = await owned(self.services, parse_id(request.job_id))
        async for lines in self.services.logs.follow(
            job_id,
            include_history=request.include_history,
            tail_lines=request.tail_lines,
            after_sequence=request.after_sequence,
        ):
            yield lines

    @server_stream
    async def SubscribeLogs(
        self, request: logs_pb2.SubscribeLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[logs_pb2.LogLine]:
        async for lines in self._follow(request):
            for line in log_lines_to_proto(lines):
                yield line

    @server_stream
    async def SubscribeLogBatches(
        self, request: logs_pb2.SubscribeLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[logs_pb2.LogLines]:
        async for lines in self._follow(request):
            if request.columnar:
                yield logs_pb2.LogLines(columns=log_columns_to_proto(lines))
            else:
                yield logs_pb2.LogLines(lines=log_lines_to_proto(lines))

    @unary
    async def GetLogs(
        self, request: logs_pb2.GetLogsRequest, context: grpc.aio.ServicerContext
    ) -> logs_pb2.GetLogsResponse:
        job_id = await owned(self.services, parse_id(request.job_id))
        lines, complete = await self.services.logs.read(
            job_id, request.after_sequence, request.limit
        )
        return logs_pb2.GetLogsResponse(lines=log_lines_to_proto(lines), complete=complete)
