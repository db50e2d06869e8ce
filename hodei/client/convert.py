"""Proto -> view conversion for the client, in one place."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from hodei.api.v1 import common_pb2, jobs_pb2, logs_pb2, platform_pb2, workers_pb2
from hodei.client.views import (
    JobView,
    LogLineView,
    ProviderView,
    QueuedJobView,
    QueueView,
    ServerInfoView,
    WorkerView,
)
from hodei.domain.jobs import JobState
from hodei.domain.workers import WorkerState
from hodei.redaction import masked_env

_JOB_STATES = {getattr(common_pb2, f"JOB_STATE_{s.value}"): s for s in JobState}
_WORKER_STATES = {getattr(common_pb2, f"WORKER_STATE_{s.value}"): s for s in WorkerState}
JOB_STATE_TO_PROTO = {s: v for v, s in _JOB_STATES.items()}


def when(value: Timestamp) -> datetime | None:
    """An unset Timestamp (0, 0) means "not yet" (e.g. started_at of a PENDING job)."""
    if value.seconds == 0 and value.nanos == 0:
        return None
    return datetime.fromtimestamp(value.seconds + value.nanos / 1e9, tz=UTC)


def job_state(value: int) -> JobState:
    try:
        return _JOB_STATES[value]
    except KeyError:
        raise ValueError(f"the server sent an unknown job state {value}") from None


def job_view(job: jobs_pb2.Job) -> JobView:
    spec = job.spec
    return JobView(
        id=job.id,
        state=job_state(job.state),
        command=tuple(spec.command),
        name=spec.name,
        env=dict(spec.env),
        # Masked again here: a view never holds a secret value, whatever the server sent.
        secret_env=masked_env(spec.secret_env),
        working_dir=spec.working_dir,
        timeout_seconds=spec.timeout_seconds or None,
        labels=dict(spec.labels),
        selector=dict(spec.selector),
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        worker_id=job.worker_id,
        exit_code=job.exit_code if job.has_exit_code else None,
        error=job.error,
        correlation_id=job.correlation_id,
        created_at=when(job.created_at),
        assigned_at=when(job.assigned_at),
        started_at=when(job.started_at),
        finished_at=when(job.finished_at),
        updated_at=when(job.updated_at),
    )


def log_line_view(line: logs_pb2.LogLine) -> LogLineView:
    stamp = line.timestamp
    return LogLineView(
        job_id=line.job_id,
        sequence=line.sequence,
        is_stderr=line.is_stderr,
        line=line.line,
        timestamp=stamp.seconds + stamp.nanos / 1e9,
        attempt=line.attempt,
    )


def log_column_views(columns: logs_pb2.LogColumns) -> list[LogLineView]:
    job_id = columns.job_id
    return [
        LogLineView(job_id, sequence, is_stderr, text, micros / 1e6, attempt)
        for sequence, is_stderr, text, micros, attempt in zip(
            columns.sequences,
            columns.is_stderr,
            columns.texts,
            columns.unix_micros,
            columns.attempts,
            strict=True,
        )
    ]


def worker_view(worker: workers_pb2.Worker) -> WorkerView:
    return WorkerView(
        id=worker.id,
        name=worker.name,
        hostname=worker.hostname,
        pid=worker.pid,
        state=_WORKER_STATES.get(worker.state, WorkerState.CREATING),
        slots=worker.slots,
        running_job_ids=tuple(worker.running_job_ids),
        connected=worker.connected,
        version=worker.version,
        last_heartbeat=when(worker.last_heartbeat),
        registered_at=when(worker.registered_at),
    )


def queue_view(resp: platform_pb2.GetQueueResponse) -> QueueView:
    return QueueView(
        depth=resp.depth,
        oldest_age_seconds=resp.oldest_age_seconds,
        jobs=[
            QueuedJobView(
                job_id=j.job_id, name=j.name, attempts=j.attempts, enqueued_at=when(j.enqueued_at)
            )
            for j in resp.jobs
        ],
        job_counts={job_state(c.state).value: c.count for c in resp.job_counts},
    )


def server_info_view(resp: platform_pb2.GetServerInfoResponse) -> ServerInfoView:
    return ServerInfoView(
        version=resp.version,
        server_id=resp.server_id,
        started_at=when(resp.started_at),
        dispatcher_enabled=resp.dispatcher_enabled,
        outbox_relay_enabled=resp.outbox_relay_enabled,
        dispatcher_last_cycle_at=when(resp.dispatcher_last_cycle_at),
        connected_workers=resp.connected_workers,
        schema_version=resp.schema_version,
        insecure=resp.insecure,
    )


def provider_view(provider: platform_pb2.Provider) -> ProviderView:
    return ProviderView(
        name=provider.name,
        type=provider.type,
        priority=provider.priority,
        max_workers=provider.max_workers,
        tags=dict(provider.tags),
        healthy=provider.healthy,
        detail=provider.detail,
        circuit_open=provider.circuit_open,
        last_error=provider.last_error,
        last_error_at=when(provider.last_error_at),
        checked_at=when(provider.checked_at),
        workers=provider.workers,
    )
