"""Plain records the services hand to the API layer and the commands they send to
workers. No proto types here: the servicers convert."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hodei.domain.jobs import JobState
from hodei.domain.workers import WorkerState


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: uuid.UUID
    name: str
    command: tuple[str, ...]
    env: dict[str, str]
    working_dir: str
    timeout_seconds: float | None
    labels: dict[str, str]
    state: JobState
    attempts: int
    max_attempts: int
    worker_id: uuid.UUID | None
    exit_code: int | None
    error: str | None
    correlation_id: str
    cancel_requested_at: datetime | None
    log_seq: int
    attempt_lines: int
    created_at: datetime
    updated_at: datetime
    assigned_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    ack_deadline: datetime | None
    #: The names of the job's secret env (values: never in this record in clear).
    secret_names: tuple[str, ...] = ()
    #: The secret env's Fernet token (hodei.server.secret_box); opened only for RunJob.
    sealed_secret_env: bytes | None = field(default=None, repr=False)
    #: The token that submitted it (None: submitted without authentication).
    owner_token_id: uuid.UUID | None = None
    #: The W3C traceparent of its enqueue span ("": not traced; hodei.tracing).
    trace_context: str = ""
    #: Only a worker whose labels contain these runs it ({}: any worker).
    selector: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JobRecord:
        return cls(
            id=row["id"],
            name=row["name"],
            command=tuple(row["command"]),
            env=dict(row["env"]),
            working_dir=row["working_dir"],
            timeout_seconds=row["timeout_seconds"],
            labels=dict(row["labels"]),
            selector=dict(row.get("selector") or {}),
            state=JobState(row["state"]),
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            worker_id=row["worker_id"],
            exit_code=row["exit_code"],
            error=row["error"],
            correlation_id=row["correlation_id"],
            cancel_requested_at=row["cancel_requested_at"],
            log_seq=row["log_seq"],
            attempt_lines=row["attempt_lines"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            assigned_at=row["assigned_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            ack_deadline=row["ack_deadline"],
            secret_names=tuple(row.get("secret_names") or ()),
            sealed_secret_env=row.get("secret_env"),
            owner_token_id=row.get("owner_token_id"),
            trace_context=row.get("trace_context") or "",
        )

    @property
    def log_fields(self) -> dict[str, object]:
        return {
            "job_id": str(self.id),
            "worker_id": str(self.worker_id) if self.worker_id else None,
            "attempt": self.attempts,
            "correlation_id": self.correlation_id,
        }


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    id: uuid.UUID
    name: str
    hostname: str
    pid: int | None
    version: str
    labels: dict[str, str]
    slots: int
    state: WorkerState
    current_job_id: uuid.UUID | None
    running_jobs: int
    server_id: str | None
    last_heartbeat: datetime | None
    registered_at: datetime
    connected_at: datetime | None
    running_job_ids: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> WorkerRecord:
        return cls(
            id=row["id"],
            name=row["name"],
            hostname=row["hostname"],
            pid=row["pid"],
            version=row["version"],
            labels=dict(row["labels"]),
            slots=row["slots"],
            state=WorkerState(row["state"]),
            current_job_id=row["current_job_id"],
            running_jobs=row["running_jobs"],
            server_id=row["server_id"],
            last_heartbeat=row["last_heartbeat"],
            registered_at=row["registered_at"],
            connected_at=row["connected_at"],
            running_job_ids=tuple(row.get("running_job_ids") or ()),
        )


@dataclass(frozen=True, slots=True)
class AttemptRef:
    """(job, attempt): the fencing token of everything a worker says about a job."""

    job_id: uuid.UUID
    attempt: int


@dataclass(frozen=True, slots=True)
class LogEntryIn:
    is_stderr: bool
    line: str
    ts: datetime


@dataclass(slots=True)
class LogChunk:
    """Lines of one attempt, by column: cheap to build from a LogBatch and to insert
    with one COPY (timestamps as integer microseconds since the Unix epoch)."""

    stderr: list[bool] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    micros: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)

    @classmethod
    def of(cls, entries: list[LogEntryIn]) -> LogChunk:
        return cls(
            [e.is_stderr for e in entries],
            [e.line for e in entries],
            [round(e.ts.timestamp() * 1e6) for e in entries],
        )

    def tail(self, start: int) -> LogChunk:
        return LogChunk(self.stderr[start:], self.lines[start:], self.micros[start:])

    def extend(self, other: LogChunk) -> None:
        self.stderr += other.stderr
        self.lines += other.lines
        self.micros += other.micros


@dataclass(frozen=True, slots=True)
class LogLineRecord:
    job_id: uuid.UUID
    sequence: int
    attempt: int
    is_stderr: bool
    line: str
    #: Microseconds since the Unix epoch (PostgreSQL's precision; cheap to encode).
    ts_us: int


@dataclass(frozen=True, slots=True)
class QueueView:
    depth: int
    oldest_age_seconds: float
    jobs: list[dict[str, Any]]
    job_counts: dict[str, int]


# ---- commands queued on a worker's session, encoded by the API layer --------------


@dataclass(frozen=True, slots=True)
class RunCommand:
    ref: AttemptRef
    command: tuple[str, ...]
    env: dict[str, str]
    working_dir: str
    timeout_seconds: float
    correlation_id: str
    #: In clear: only in memory, on its way to the worker; never in a repr or a log.
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)
    #: The W3C traceparent of its dispatch span ("": not traced).
    trace_context: str = ""


@dataclass(frozen=True, slots=True)
class CancelCommand:
    ref: AttemptRef
    force: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PersistedNotice:
    ref: AttemptRef
    next_line: int
    result_persisted: bool = False


@dataclass(frozen=True, slots=True)
class RejectedNotice:
    ref: AttemptRef | None
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class WelcomeNotice:
    worker_id: uuid.UUID
    server_id: str
    superseded: list[AttemptRef] = field(default_factory=list)


ServerCommand = RunCommand | CancelCommand | PersistedNotice | RejectedNotice | WelcomeNotice
