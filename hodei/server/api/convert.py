"""Proto <-> domain conversion, in one place. Only the API layer imports proto types."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from hodei.api.v1 import common_pb2, jobs_pb2, logs_pb2, platform_pb2, workers_pb2
from hodei.domain.jobs import JobState
from hodei.domain.workers import WorkerState
from hodei.errors import InvalidArgument
from hodei.redaction import masked_env
from hodei.server.models import (
    AttemptRef,
    CancelCommand,
    JobRecord,
    LogChunk,
    LogLineRecord,
    PersistedNotice,
    QueueView,
    RejectedNotice,
    RunCommand,
    ServerCommand,
    WelcomeNotice,
    WorkerRecord,
)
from hodei.server.results import AttemptResult


def parse_id(value: str, what: str = "job_id") -> uuid.UUID:
    """A client-supplied id, or InvalidArgument with a one-line message."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(f"{what} {value!r} is not a valid UUID") from None


def worker_time(message: Message, field: str) -> datetime | None:
    """A time a worker reported, by its clock; None when unset (an older worker) or
    not a time this server can store."""
    if not message.HasField(field):
        return None
    try:
        stamp: Timestamp = getattr(message, field)
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value)
    return out


# ---- job states -----------------------------------------------------------------

_JOB_STATE_TO_PROTO = {s: getattr(common_pb2, f"JOB_STATE_{s.value}") for s in JobState}
_JOB_STATE_FROM_PROTO = {v: k for k, v in _JOB_STATE_TO_PROTO.items()}
_WORKER_STATE_TO_PROTO = {s: getattr(common_pb2, f"WORKER_STATE_{s.value}") for s in WorkerState}

_OUTCOME_TO_STATE: dict[int, JobState] = {
    workers_pb2.JOB_OUTCOME_SUCCEEDED: JobState.SUCCEEDED,
    workers_pb2.JOB_OUTCOME_FAILED: JobState.FAILED,
    workers_pb2.JOB_OUTCOME_TIMED_OUT: JobState.TIMED_OUT,
    workers_pb2.JOB_OUTCOME_CANCELLED: JobState.CANCELLED,
}


def job_state_from_proto(value: int) -> JobState:
    try:
        return _JOB_STATE_FROM_PROTO[value]
    except KeyError:
        raise InvalidArgument(f"unknown job state {value}") from None


def outcome_to_state(value: int) -> JobState:
    try:
        return _OUTCOME_TO_STATE[value]
    except KeyError:
        raise InvalidArgument(f"job result has no valid outcome ({value})") from None


def attempt_result(result: workers_pb2.JobResult) -> AttemptResult:
    return AttemptResult(
        ref_from_proto(result.ref),
        outcome_to_state(result.outcome),
        result.exit_code if result.has_exit_code else None,
        result.error,
        result.total_lines,
        result.lines_read if result.has_output_read else None,
        result.bytes_read if result.has_output_read else None,
        result.trace_context,
        worker_time(result, "started_at"),
    )


# ---- jobs -------------------------------------------------------------------------


def spec_args(spec: jobs_pb2.JobSpec) -> dict[str, Any]:
    """A JobSpec as keyword arguments of hodei.server.submission.Submission.queue."""
    return {
        "command": list(spec.command),
        "env": dict(spec.env),
        "working_dir": spec.working_dir,
        "timeout_seconds": spec.timeout_seconds or None,
        "max_attempts": spec.max_attempts or None,
        "name": spec.name,
        "labels": dict(spec.labels),
        "secret_env": dict(spec.secret_env),
        "selector": dict(spec.selector),
    }


def job_to_proto(job: JobRecord) -> jobs_pb2.Job:
    return jobs_pb2.Job(
        id=str(job.id),
        spec=jobs_pb2.JobSpec(
            command=list(job.command),
            env=job.env,
            working_dir=job.working_dir,
            timeout_seconds=job.timeout_seconds or 0.0,
            max_attempts=job.max_attempts,
            name=job.name,
            labels=job.labels,
            # The names only: the values never leave the server but in a RunJob.
            secret_env=masked_env(job.secret_names),
            selector=job.selector,
        ),
        state=_JOB_STATE_TO_PROTO[job.state],
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        worker_id=str(job.worker_id) if job.worker_id else "",
        has_exit_code=job.exit_code is not None,
        exit_code=job.exit_code or 0,
        error=job.error or "",
        correlation_id=job.correlation_id,
        created_at=ts(job.created_at),
        assigned_at=ts(job.assigned_at),
        started_at=ts(job.started_at),
        finished_at=ts(job.finished_at),
        updated_at=ts(job.updated_at),
    )


def log_lines_to_proto(lines: list[LogLineRecord]) -> list[logs_pb2.LogLine]:
    """Hot path (every line a subscriber reads): no datetime, one job id string."""
    out: list[logs_pb2.LogLine] = []
    job_ids: dict[uuid.UUID, str] = {}
    for line in lines:
        job_id = job_ids.get(line.job_id)
        if job_id is None:
            job_id = job_ids[line.job_id] = str(line.job_id)
        seconds, micros = divmod(line.ts_us, 1_000_000)
        out.append(
            logs_pb2.LogLine(
                job_id=job_id,
                sequence=line.sequence,
                is_stderr=line.is_stderr,
                line=line.line,
                timestamp=Timestamp(seconds=seconds, nanos=micros * 1000),
                attempt=line.attempt,
            )
        )
    return out


def log_columns_to_proto(lines: list[LogLineRecord]) -> logs_pb2.LogColumns:
    """The columnar form: one list per field, so no message object per line."""
    return logs_pb2.LogColumns(
        job_id=str(lines[0].job_id) if lines else "",
        sequences=[line.sequence for line in lines],
        is_stderr=[line.is_stderr for line in lines],
        texts=[line.line for line in lines],
        unix_micros=[line.ts_us for line in lines],
        attempts=[line.attempt for line in lines],
    )


def queue_to_proto(view: QueueView) -> platform_pb2.GetQueueResponse:
    return platform_pb2.GetQueueResponse(
        depth=view.depth,
        oldest_age_seconds=view.oldest_age_seconds,
        jobs=[
            platform_pb2.QueuedJob(
                job_id=str(j["job_id"]),
                enqueued_at=ts(j["enqueued_at"]),
                attempts=j["attempts"],
                name=j["name"],
            )
            for j in view.jobs
        ],
        job_counts=[
            platform_pb2.JobStateCount(state=_JOB_STATE_TO_PROTO[JobState(s)], count=n)
            for s, n in view.job_counts.items()
        ],
    )


# ---- workers ----------------------------------------------------------------------


def worker_to_proto(worker: WorkerRecord) -> workers_pb2.Worker:
    return workers_pb2.Worker(
        id=str(worker.id),
        name=worker.name,
        hostname=worker.hostname,
        pid=worker.pid or 0,
        state=_WORKER_STATE_TO_PROTO[worker.state],
        slots=worker.slots,
        running_job_ids=list(worker.running_job_ids),
        last_heartbeat=ts(worker.last_heartbeat),
        registered_at=ts(worker.registered_at),
        connected=worker.server_id is not None,
        version=worker.version,
    )


def ref_from_proto(ref: common_pb2.JobRef) -> AttemptRef:
    if not ref.job_id:
        raise InvalidArgument("message has no job reference")
    return AttemptRef(parse_id(ref.job_id), ref.attempt)


def ref_to_proto(ref: AttemptRef) -> common_pb2.JobRef:
    return common_pb2.JobRef(job_id=str(ref.job_id), attempt=ref.attempt)


def log_chunk(batch: workers_pb2.LogBatch) -> LogChunk:
    """Column-wise, without datetime objects: this runs for every line ingested.
    A line without a timestamp gets the time it was received."""
    now_us = time.time_ns() // 1000
    chunk = LogChunk()
    for e in batch.entries:  # one message per line: the slow form
        chunk.stderr.append(e.is_stderr)
        chunk.lines.append(e.line)
        chunk.micros.append(_micros(e.timestamp, now_us))
    for seg in batch.segments:  # lines sharing stream and time: list() runs in C
        lines = list(seg.lines)
        chunk.stderr += [seg.is_stderr] * len(lines)
        chunk.lines += lines
        chunk.micros += [_micros(seg.timestamp, now_us)] * len(lines)
    return chunk


def _micros(ts: Timestamp, default: int) -> int:
    seconds, nanos = ts.seconds, ts.nanos
    return seconds * 1_000_000 + nanos // 1000 if seconds or nanos else default


def commands_to_proto(commands: list[ServerCommand]) -> workers_pb2.ServerMessage:
    """Several commands as one ServerMessage (a batch when there are several)."""
    if len(commands) == 1:
        return command_to_proto(commands[0])
    return workers_pb2.ServerMessage(
        batch=workers_pb2.ServerBatch(messages=[command_to_proto(c) for c in commands])
    )


def command_to_proto(command: ServerCommand) -> workers_pb2.ServerMessage:
    match command:
        case RunCommand():
            return workers_pb2.ServerMessage(
                run=workers_pb2.RunJob(
                    ref=ref_to_proto(command.ref),
                    command=list(command.command),
                    env=command.env,
                    working_dir=command.working_dir,
                    timeout_seconds=command.timeout_seconds,
                    correlation_id=command.correlation_id,
                    secret_env=command.secret_env,
                    trace_context=command.trace_context,
                )
            )
        case CancelCommand():
            return workers_pb2.ServerMessage(
                cancel=workers_pb2.CancelJob(
                    ref=ref_to_proto(command.ref), force=command.force, reason=command.reason
                )
            )
        case PersistedNotice():
            return workers_pb2.ServerMessage(
                persisted=workers_pb2.Persisted(
                    ref=ref_to_proto(command.ref),
                    next_line=command.next_line,
                    result_persisted=command.result_persisted,
                )
            )
        case RejectedNotice():
            return workers_pb2.ServerMessage(
                rejected=workers_pb2.Rejected(
                    ref=ref_to_proto(command.ref) if command.ref else None,
                    code=command.code,
                    message=command.message,
                )
            )
        case WelcomeNotice():
            return workers_pb2.ServerMessage(
                welcome=workers_pb2.Welcome(
                    worker_id=str(command.worker_id),
                    server_id=command.server_id,
                    superseded=[ref_to_proto(r) for r in command.superseded],
                    batches=True,  # this server reads WorkerMessage.batch
                )
            )
    raise TypeError(f"unknown command {command!r}")


def new_id() -> uuid.UUID:
    return uuid.uuid4()
