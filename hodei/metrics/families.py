"""Every metric of the contract, declared once with its help text, on a registry of
its owner's own (one server, one worker).

Per process: the counters and histograms, `hodei_build_info`, the pool gauges and
`hodei_database_up`: each server replica counts its own, so sum them across replicas.
Database-wide: `hodei_queue_*`, `hodei_outbox_unpublished`, `hodei_outbox_publish_lag_seconds`,
`hodei_workers`, and the server's `hodei_worker_slots*`, read from PostgreSQL by every
server (hodei.server.metrics_refresh): the same value on every replica, so aggregate
them with max, never sum. docs/observability.md says the same for operators.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from hodei import __version__
from hodei.domain.jobs import JobState
from hodei.metrics.pools import PoolCollector

# The `_created` series (a counter's creation time) double the exposition for nothing
# a dashboard or alert of ours reads; process-wide, like prometheus_client's own setting.
disable_created_metrics()

#: The final states a job can end in (hodei_jobs_finished_total's `state`).
FINAL_STATES = tuple(str(s) for s in JobState if s.is_final)
#: Worker states (hodei_workers' `state`), listed even when no worker is in them, so a
#: state's series exists at 0 instead of vanishing.
WORKER_STATES = ("CREATING", "READY", "BUSY", "DRAINING", "TERMINATED", "LOST")

#: Waits in a queue: from a millisecond (eager dispatch) to an hour (a starved queue).
_WAIT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    900,
    3600,
)
#: Job runs: from an `echo` to a few hours.
_RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)
#: gRPC calls: unary calls take milliseconds; a worker's stream lasts as long as the worker.
_CALL_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    60,
    600,
    3600,
)
#: Spawning a job process: a fork and exec, slower under load.
_SPAWN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


def _build_info(registry: CollectorRegistry, component: str) -> Gauge:
    info = Gauge(
        "hodei_build_info",
        "Always 1; its labels say which Hodei, on which Python, runs in this process",
        ["version", "python_version", "component"],
        registry=registry,
    )
    info.labels(__version__, platform.python_version(), component).set(1)
    return info


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


class ServerMetrics:
    """The server's families. The services call the small methods below on the hot
    paths (a counter increment each: no database read for metrics there)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.build_info = _build_info(r, "server")
        self.jobs_submitted = Counter(
            "hodei_jobs_submitted", "Jobs accepted by this server", registry=r
        )
        self.jobs_finished = Counter(
            "hodei_jobs_finished",
            "Jobs that reached a final state, counted by the server that recorded it",
            ["state"],
            registry=r,
        )
        for state in FINAL_STATES:
            self.jobs_finished.labels(state)
        self.queue_wait = Histogram(
            "hodei_job_queue_wait_seconds",
            "Seconds from enqueue to assignment, observed at dispatch",
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.run_duration = Histogram(
            "hodei_job_run_duration_seconds",
            "Seconds from a job's start to its final state, observed at the final state",
            buckets=_RUN_BUCKETS,
            registry=r,
        )
        self.dispatcher_cycles = Counter(
            "hodei_dispatcher_cycles", "Dispatcher cycles run by this server", registry=r
        )
        self.dispatcher_errors = Counter(
            "hodei_dispatcher_errors", "Dispatcher cycles that failed on this server", registry=r
        )
        self.dispatcher_last_cycle = Gauge(
            "hodei_dispatcher_last_cycle_timestamp_seconds",
            "Unix time of this server's last completed dispatcher cycle (0: none yet)",
            registry=r,
        )
        self.outbox_published = Counter(
            "hodei_outbox_published", "Outbox rows published by this server's relay", registry=r
        )
        self.log_lines = Counter(
            "hodei_log_lines_ingested", "Job output lines stored by this server", registry=r
        )
        self.log_bytes = Counter(
            "hodei_log_bytes_ingested",
            "Bytes of job output lines stored by this server (UTF-8)",
            registry=r,
        )
        self.grpc_handled = Counter(
            "hodei_grpc_server_handled",
            "gRPC calls this server completed, by method and status code (streams when they end)",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=r,
        )
        self.grpc_seconds = Histogram(
            "hodei_grpc_server_handling_seconds",
            "Seconds from a gRPC call's start to its end, on this server",
            ["grpc_service", "grpc_method"],
            buckets=_CALL_BUCKETS,
            registry=r,
        )
        self.pools = PoolCollector()
        r.register(self.pools)
        self.database_up = Gauge(
            "hodei_database_up",
            "1 while this server's database watch reaches the database, else 0",
            registry=r,
        )
        # Database-wide (hodei.server.metrics_refresh sets them every few seconds).
        self.queue_depth = Gauge(
            "hodei_queue_depth",
            "Jobs waiting in the queue to be dispatched (database-wide: aggregate with max)",
            registry=r,
        )
        self.queue_oldest_wait = Gauge(
            "hodei_queue_oldest_wait_seconds",
            "Age of the oldest queued job, 0 when the queue is empty (database-wide)",
            registry=r,
        )
        self.outbox_unpublished = Gauge(
            "hodei_outbox_unpublished", "Outbox rows not yet published (database-wide)", registry=r
        )
        self.outbox_lag = Gauge(
            "hodei_outbox_publish_lag_seconds",
            "Age of the oldest unpublished outbox row, 0 when none (database-wide)",
            registry=r,
        )
        self.workers = Gauge(
            "hodei_workers", "Workers by state (database-wide)", ["state"], registry=r
        )
        for state in WORKER_STATES:
            self.workers.labels(state)
        self.worker_slots = Gauge(
            "hodei_worker_slots", "Slots of the live workers (database-wide)", registry=r
        )
        self.worker_slots_busy = Gauge(
            "hodei_worker_slots_busy",
            "Slots of the live workers running a job (database-wide)",
            registry=r,
        )

    # The hot paths' calls, one line each in the services.

    def submitted(self, count: int = 1) -> None:
        self.jobs_submitted.inc(count)

    def assigned(self, jobs: Iterable[tuple[datetime | None, datetime | None]]) -> None:
        """(enqueued_at, assigned_at) of each job just assigned."""
        for enqueued, assigned in jobs:
            wait = _seconds_between(enqueued, assigned)
            if wait is not None:
                self.queue_wait.observe(wait)

    def finished(
        self, state: str, started_at: datetime | None, finished_at: datetime | None
    ) -> None:
        self.jobs_finished.labels(state).inc()
        ran = _seconds_between(started_at, finished_at)
        if ran is not None:
            self.run_duration.observe(ran)

    def snapshot(self, row: Mapping[str, Any]) -> None:
        """The database-wide gauges from one `metrics_snapshot` row."""
        self.queue_depth.set(row["queue_depth"])
        self.queue_oldest_wait.set(row["queue_oldest_wait_seconds"])
        self.outbox_unpublished.set(row["outbox_unpublished"])
        self.outbox_lag.set(row["outbox_publish_lag_seconds"])
        by_state = row["workers_by_state"]
        for state in WORKER_STATES:
            self.workers.labels(state).set(by_state.get(state, 0))
        self.worker_slots.set(row["worker_slots"])
        self.worker_slots_busy.set(row["worker_slots_busy"])

    def cycle_done(self) -> None:
        self.dispatcher_cycles.inc()
        self.dispatcher_last_cycle.set_to_current_time()

    def logs_ingested(self, lines: int, size: int) -> None:
        self.log_lines.inc(lines)
        self.log_bytes.inc(size)


class WorkerMetrics:
    """A worker process's families."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.build_info = _build_info(r, "worker")
        self.jobs = Counter(
            "hodei_worker_jobs",
            "Jobs this worker ran, by the final state it reported",
            ["result"],
            registry=r,
        )
        for state in FINAL_STATES:
            self.jobs.labels(state)
        self.spawn_seconds = Histogram(
            "hodei_worker_spawn_seconds",
            "Seconds from RunJob received to the job's process started",
            buckets=_SPAWN_BUCKETS,
            registry=r,
        )
        self.log_bytes = Counter(
            "hodei_worker_log_bytes", "Bytes of output this worker read from its jobs", registry=r
        )
        self.reconnects = Counter(
            "hodei_worker_reconnects",
            "Times this worker opened its stream again after losing it",
            registry=r,
        )
        self.slots = Gauge("hodei_worker_slots", "Job slots of this worker", registry=r)
        self.slots_busy = Gauge(
            "hodei_worker_slots_busy", "Slots of this worker running a job", registry=r
        )


#: The metrics of the server whose tasks run in this context. ServerApp sets it before it
#: starts anything: every task it creates (the gRPC calls' tasks, the loops) copies the
#: context, so each server of a test process counts into its own registry without the
#: services passing the object down. Outside a server (unit tests of a service) the
#: counts go to a registry nobody serves.
_CURRENT: ContextVar[ServerMetrics | None] = ContextVar("hodei_server_metrics", default=None)
_UNSERVED: list[ServerMetrics] = []


def use_server_metrics(metrics: ServerMetrics) -> None:
    _CURRENT.set(metrics)


def server_metrics() -> ServerMetrics:
    current = _CURRENT.get()
    if current is not None:
        return current
    if not _UNSERVED:
        _UNSERVED.append(ServerMetrics())
    return _UNSERVED[0]
