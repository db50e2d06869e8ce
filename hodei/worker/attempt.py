"""What the worker agent keeps about one attempt it holds: its process, its buffered
lines and result, and what it has sent of them on the current stream."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hodei.api.v1 import common_pb2, workers_pb2
from hodei.worker.lines import LogBuffer
from hodei.worker.runner import JobProcess

#: (job id, attempt): the fencing token the server checks on every message.
Key = tuple[str, int]


@dataclass(eq=False)
class Attempt:
    """One attempt this worker holds, from RunJob until the server persisted its result."""

    job_id: str
    attempt: int
    correlation_id: str
    #: The command line, shortened, for the log.
    command: str = ""
    logs: LogBuffer = field(default_factory=LogBuffer)
    process: JobProcess | None = None
    task: asyncio.Task[None] | None = None
    pid: int | None = None
    running: bool = True  # the process has not finished yet
    # Stopped by our own shutdown: handed back to the server for a retry, no result.
    give_back: bool = False
    result: workers_pb2.JobResult | None = None
    # What was sent on the current stream (reset on each reconnect).
    ack_sent: bool = False
    started_sent: bool = False
    result_sent: bool = False

    @property
    def key(self) -> Key:
        return (self.job_id, self.attempt)

    @property
    def ref(self) -> common_pb2.JobRef:
        return common_pb2.JobRef(job_id=self.job_id, attempt=self.attempt)

    def log_fields(self, worker_id: str) -> dict[str, object]:
        return {
            "worker_id": worker_id,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "correlation_id": self.correlation_id or None,
        }
