"""Plain values the client returns, so proto types never leave the API adapter.

Every view has `to_dict()` giving JSON-ready data (timestamps as ISO 8601 UTC
strings, states as their names): the CLI's `--output json` prints exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hodei.domain.jobs import JobState
from hodei.domain.workers import WorkerState
from hodei.redaction import masked_env


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


@dataclass(frozen=True, slots=True)
class JobView:
    id: str
    state: JobState
    command: tuple[str, ...]
    name: str = ""
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    timeout_seconds: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    max_attempts: int = 0
    worker_id: str = ""
    exit_code: int | None = None
    error: str = ""
    correlation_id: str = ""
    created_at: datetime | None = None
    assigned_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    #: Secret env as the server answers it: the names, each with "***".
    secret_env: dict[str, str] = field(default_factory=dict)
    #: Only a worker whose labels contain these runs the job.
    selector: dict[str, str] = field(default_factory=dict)

    @property
    def is_final(self) -> bool:
        return self.state.is_final

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state.value,
            "command": list(self.command),
            "env": dict(self.env),
            "secret_env": masked_env(self.secret_env),
            "working_dir": self.working_dir,
            "timeout_seconds": self.timeout_seconds,
            "labels": dict(self.labels),
            "selector": dict(self.selector),
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "worker_id": self.worker_id or None,
            "exit_code": self.exit_code,
            "error": self.error or None,
            "correlation_id": self.correlation_id,
            "created_at": _iso(self.created_at),
            "assigned_at": _iso(self.assigned_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class LogLineView:
    job_id: str
    sequence: int
    is_stderr: bool
    line: str
    # Seconds since the epoch: cheaper than a datetime per line on a 1M-line stream.
    timestamp: float
    attempt: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "sequence": self.sequence,
            "stream": "stderr" if self.is_stderr else "stdout",
            "line": self.line,
            "timestamp": self.timestamp,
            "attempt": self.attempt,
        }


@dataclass(frozen=True, slots=True)
class LogsPage:
    lines: list[LogLineView]
    # The job is final and `lines` reaches its last line.
    complete: bool


@dataclass(frozen=True, slots=True)
class WorkerView:
    id: str
    name: str
    hostname: str
    pid: int
    state: WorkerState
    slots: int
    running_job_ids: tuple[str, ...]
    connected: bool
    version: str
    last_heartbeat: datetime | None
    registered_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "hostname": self.hostname,
            "pid": self.pid,
            "state": self.state.value,
            "slots": self.slots,
            "running_job_ids": list(self.running_job_ids),
            "connected": self.connected,
            "version": self.version,
            "last_heartbeat": _iso(self.last_heartbeat),
            "registered_at": _iso(self.registered_at),
        }


@dataclass(frozen=True, slots=True)
class QueuedJobView:
    job_id: str
    name: str
    attempts: int
    enqueued_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "name": self.name,
            "attempts": self.attempts,
            "enqueued_at": _iso(self.enqueued_at),
        }


@dataclass(frozen=True, slots=True)
class QueueView:
    depth: int
    oldest_age_seconds: float
    jobs: list[QueuedJobView]
    job_counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "oldest_age_seconds": self.oldest_age_seconds,
            "jobs": [j.to_dict() for j in self.jobs],
            "job_counts": dict(self.job_counts),
        }


@dataclass(frozen=True, slots=True)
class ServerInfoView:
    version: str
    server_id: str
    started_at: datetime | None
    dispatcher_enabled: bool
    outbox_relay_enabled: bool
    dispatcher_last_cycle_at: datetime | None
    connected_workers: int
    schema_version: int
    #: The server runs without authentication.
    insecure: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "server_id": self.server_id,
            "started_at": _iso(self.started_at),
            "dispatcher_enabled": self.dispatcher_enabled,
            "outbox_relay_enabled": self.outbox_relay_enabled,
            "dispatcher_last_cycle_at": _iso(self.dispatcher_last_cycle_at),
            "connected_workers": self.connected_workers,
            "schema_version": self.schema_version,
            "insecure": self.insecure,
        }


@dataclass(frozen=True, slots=True)
class ProviderView:
    """A provider of workers on demand, as the scalers last saw it (`hodei providers`)."""

    name: str
    type: str
    priority: int = 0
    max_workers: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    healthy: bool = False
    detail: str = ""
    circuit_open: bool = False
    last_error: str = ""
    last_error_at: datetime | None = None
    checked_at: datetime | None = None
    workers: int = 0

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "name": self.name,
            "type": self.type,
            "priority": self.priority,
            "max_workers": self.max_workers,
            "tags": dict(self.tags),
            "healthy": self.healthy,
            "detail": self.detail,
            "circuit_open": self.circuit_open,
            "last_error": self.last_error or None,
            "last_error_at": iso(self.last_error_at),
            "checked_at": iso(self.checked_at),
            "workers": self.workers,
        }
