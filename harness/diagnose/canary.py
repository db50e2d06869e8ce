"""The canary: one test-tagged job followed through dispatch, execution and log streaming.

This module is a client adapter (proto types stay here): it talks to the server's
public API only, so it sees what a user sees.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime

import grpc

from hodei.api.v1 import common_pb2, jobs_pb2, jobs_pb2_grpc, logs_pb2, logs_pb2_grpc

CANARY_STDOUT = "hodei-canary stdout line"
CANARY_STDERR = "hodei-canary stderr line"
TEST_LABEL = ("hodei.io/test", "true")


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


def _ts(value: object) -> datetime | None:
    seconds = getattr(value, "seconds", 0)
    nanos = getattr(value, "nanos", 0)
    if not seconds and not nanos:
        return None
    return value.ToDatetime()  # type: ignore[attr-defined]


def _delta(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else round((b - a).total_seconds(), 4)


def run_canary(address: str, timeout_s: float) -> CanaryResult:
    """Queue the canary, follow its logs until the stream ends or `timeout_s` passes."""
    result = CanaryResult()
    script = f"echo '{CANARY_STDOUT}'; echo '{CANARY_STDERR}' >&2"
    spec = jobs_pb2.JobSpec(
        command=["/bin/sh", "-c", script],
        name="hodei-diagnose-canary",
        timeout_seconds=max(1.0, timeout_s),
        max_attempts=1,
        labels=dict([TEST_LABEL, ("hodei.io/canary", "true")]),
    )
    with grpc.insecure_channel(address) as channel:
        jobs = jobs_pb2_grpc.JobExecutionServiceStub(channel)
        logs = logs_pb2_grpc.LogStreamServiceStub(channel)
        start = time.perf_counter()
        job = jobs.QueueJob(jobs_pb2.QueueJobRequest(spec=spec), timeout=5.0).job
        result.job_id = job.id
        deadline = start + timeout_s
        try:
            stream = logs.SubscribeLogs(
                logs_pb2.SubscribeLogsRequest(job_id=job.id, include_history=True),
                timeout=max(0.1, deadline - time.perf_counter()),
            )
            for line in stream:
                if result.first_log_s is None:
                    result.first_log_s = round(time.perf_counter() - start, 4)
                result.lines.append((line.is_stderr, line.line))
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                result.timed_out = True
            else:
                result.error = f"SubscribeLogs: {exc.code().name}: {exc.details()}"
        result.total_s = round(time.perf_counter() - start, 4)
        final = jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job.id), timeout=5.0)
        result.state = common_pb2.JobState.Name(final.state).removeprefix("JOB_STATE_")
        result.exit_code = final.exit_code if final.has_exit_code else None
        created, assigned = _ts(final.created_at), _ts(final.assigned_at)
        started, finished = _ts(final.started_at), _ts(final.finished_at)
        result.dispatch_s = _delta(created, assigned)
        result.start_s = _delta(assigned, started)
        result.execution_s = _delta(started, finished)
        if result.state in ("PENDING", "ASSIGNED", "RUNNING"):
            # Leave nothing behind: a canary that did not finish is cancelled.
            with contextlib.suppress(grpc.RpcError):
                jobs.CancelJob(jobs_pb2.CancelJobRequest(
                    job_id=job.id, reason="hodei-diagnose canary timed out", force=True),
                    timeout=5.0)
    return result
