"""What the worker agent keeps about one attempt it holds: its process, its buffered
lines and result, and what it has sent of them on the current stream."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from opentelemetry.trace import Span

from hodei.api.v1 import common_pb2, workers_pb2
from hodei.redaction import SecretMask
from hodei.worker.lines import LogBuffer
from hodei.worker.runner import JobProcess
from hodei.worker.wire import encode_log_batch

#: (job id, attempt): the fencing token the server checks on every message.
Key = tuple[str, int]

#: Upper bound of one LogBatch in bytes, under the server's 4 MiB receive limit.
MAX_BATCH_BYTES = 2 * 1024 * 1024

#: Log batches of one attempt written but not yet confirmed by Persisted. Bounded so
#: that a slow server holds at most this much of our output in its queues (the rest
#: waits here, under worker_log_buffer_bytes); large enough that the server can merge
#: waiting batches into one insert (4 gave about half the end-to-end rate of 16), and
#: above the server's largest merge (50,000 lines) so that the next batches arrive
#: while one is being copied: 16 x 2,000 lines gave 194,000 lines/s, 32 gave 225,000.
LOG_WINDOW_BATCHES = 32


def attempt_env(att: Attempt) -> dict[str, str]:
    """What a job's process is told about itself (documented in docs/worker.md)."""
    return {
        "HODEI_JOB_ID": att.job_id,
        "HODEI_JOB_ATTEMPT": str(att.attempt),
        "HODEI_CORRELATION_ID": att.correlation_id,
    }


@dataclass(eq=False)
class Attempt:
    """One attempt this worker holds, from RunJob until the server persisted its result."""

    job_id: str
    attempt: int
    correlation_id: str
    #: The command line, shortened, for the DEBUG log (secret values masked).
    command: str = ""
    #: Masks the job's secret env values in its output lines before they are buffered.
    mask: SecretMask = field(default_factory=lambda: SecretMask(()), repr=False)
    logs: LogBuffer = field(default_factory=LogBuffer)
    process: JobProcess | None = None
    task: asyncio.Task[None] | None = None
    pid: int | None = None
    running: bool = True  # the process has not finished yet
    #: Prefetched: accepted and acknowledged, waiting for a free slot (no process yet).
    queued: bool = False
    #: Monotonic time its process was started (its run time adapts the prefetch).
    launched_at: float | None = None
    # Stopped by our own shutdown: handed back to the server for a retry, no result.
    give_back: bool = False
    result: workers_pb2.JobResult | None = None
    #: Lines (as split for the wire) and bytes read from the process's output, sent
    #: with the result whatever became of them.
    lines_read: int = 0
    bytes_read: int = 0
    # What was sent on the current stream (reset on each reconnect).
    ack_sent: bool = False
    started_sent: bool = False
    result_sent: bool = False
    #: The attempt's RunJob span (None: not traced; hodei.tracing), ended with its process.
    span: Span | None = field(default=None, repr=False)

    @property
    def key(self) -> Key:
        return (self.job_id, self.attempt)

    @property
    def ref(self) -> common_pb2.JobRef:
        return common_pb2.JobRef(job_id=self.job_id, attempt=self.attempt)

    def next_message(
        self, now: float, batch_lines: int, interval: float
    ) -> tuple[workers_pb2.WorkerMessage | bytes | None, float | None]:
        """What this attempt has to say next on the stream, in protocol order (JobAck,
        JobStarted, its lines, JobResult), marked as sent; or None and, when lines wait
        for `interval` to pass, in how many seconds they are due."""
        if not self.ack_sent:
            self.ack_sent = True
            if self.pid is not None and not self.started_sent:
                # Already started (the spawn ran before this write): JobStarted also
                # counts as the ack, so one message and one server commit.
                self.started_sent = True
                return self._started(), None
            return workers_pb2.WorkerMessage(
                ack=workers_pb2.JobAck(ref=self.ref, accepted=True)
            ), None
        if self.pid is not None and not self.started_sent:
            self.started_sent = True
            return self._started(), None
        logs = self.logs
        if logs.sent - logs.base >= LOG_WINDOW_BATCHES * batch_lines:
            return None, None  # woken again by the server's next Persisted
        if logs.unsent:
            since = logs.unsent_since if logs.unsent_since is not None else now
            if logs.unsent >= batch_lines or not self.running or now - since >= interval:
                first, segments = logs.take(batch_lines, MAX_BATCH_BYTES, now)
                return encode_log_batch(self.ref, first, segments), None
            return None, since + interval - now
        if self.result is not None and not self.result_sent:
            self.result_sent = True
            return workers_pb2.WorkerMessage(result=self.result), None
        return None, None

    def _started(self) -> workers_pb2.WorkerMessage:
        return workers_pb2.WorkerMessage(started=workers_pb2.JobStarted(ref=self.ref, pid=self.pid))

    def log_fields(self, worker_id: str) -> dict[str, object]:
        return {
            "worker_id": worker_id,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "correlation_id": self.correlation_id or None,
        }
