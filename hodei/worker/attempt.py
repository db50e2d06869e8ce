"""What the worker agent keeps about one attempt it holds: its process, its buffered
lines and result, and what it has sent of them on the current stream."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.trace import Span, StatusCode

from hodei.api.v1 import common_pb2, workers_pb2
from hodei.redaction import SecretMask
from hodei.tracing import traceparent
from hodei.worker.lines import LogBuffer
from hodei.worker.runner import JobProcess, Outcome, RunResult
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


_OUTCOMES = {
    Outcome.SUCCEEDED: workers_pb2.JOB_OUTCOME_SUCCEEDED,
    Outcome.FAILED: workers_pb2.JOB_OUTCOME_FAILED,
    Outcome.TIMED_OUT: workers_pb2.JOB_OUTCOME_TIMED_OUT,
    Outcome.CANCELLED: workers_pb2.JOB_OUTCOME_CANCELLED,
}


def wall_clock(offset_s: float = 0.0) -> Timestamp:
    """This worker's wall clock as it tells the server (Hello, heartbeats, job starts),
    shifted by `offset_s` (a testing setting that simulates a skewed clock)."""
    stamp = Timestamp()
    stamp.FromNanoseconds(time.time_ns() + int(offset_s * 1e9))
    return stamp


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
    #: The worker's wall clock when the process started (JobStarted.started_at).
    started_at: Timestamp | None = None
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
        self, now: float, batch_lines: int, interval: float, start_hold: float = 0.0
    ) -> tuple[workers_pb2.WorkerMessage | bytes | None, float | None]:
        """What this attempt has to say next on the stream, in protocol order (JobAck,
        JobStarted, its lines, JobResult), marked as sent; or None and, when lines wait
        for `interval` or the start for `start_hold` to pass, in how many seconds that is
        due.

        A started process's JobStarted (which also counts as the JobAck) waits up to
        `start_hold` after the spawn: a job that ends meanwhile without output is
        reported by its JobResult alone, carrying the start (`_folded`)."""
        if self.pid is not None and not self.started_sent:
            held = self._start_held(now, start_hold)
            if held is not None:
                return None, held
            self.ack_sent = self.started_sent = True
            if self.result is not None and not self.result_sent and self.logs.total == 0:
                self.result_sent = True
                return self._folded(), None
            return self._started(), None
        if not self.ack_sent:
            self.ack_sent = True
            return workers_pb2.WorkerMessage(
                ack=workers_pb2.JobAck(ref=self.ref, accepted=True)
            ), None
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

    def finish(self, result: RunResult) -> None:
        """Its process ended (or never started): the JobResult to send, and its span
        ended with the outcome."""
        self.result = workers_pb2.JobResult(
            ref=self.ref,
            outcome=_OUTCOMES[result.outcome],
            has_exit_code=result.exit_code is not None,
            exit_code=result.exit_code or 0,
            error=result.error,
            total_lines=self.logs.total,
            has_output_read=True,
            lines_read=self.lines_read,
            bytes_read=self.bytes_read,
            trace_context=traceparent(self.span),
        )
        if self.span is not None:
            if result.exit_code is not None:
                self.span.set_attribute("hodei.exit_code", result.exit_code)
            failed = result.outcome != Outcome.SUCCEEDED
            end_span(self.span, (result.error or str(result.outcome)) if failed else "")

    def _start_held(self, now: float, start_hold: float) -> float | None:
        """Seconds the JobStarted may still wait for the process's end, or None: send."""
        if start_hold <= 0 or self.result is not None or self.launched_at is None:
            return None
        left = self.launched_at + start_hold - now
        return left if left > 0 else None

    def _started(self) -> workers_pb2.WorkerMessage:
        return workers_pb2.WorkerMessage(
            started=workers_pb2.JobStarted(ref=self.ref, pid=self.pid, started_at=self.started_at)
        )

    def _folded(self) -> workers_pb2.WorkerMessage:
        """The JobResult that also reports the start (no JobStarted was sent)."""
        assert self.result is not None
        result = workers_pb2.JobResult()
        result.CopyFrom(self.result)
        result.pid = self.pid or 0
        if self.started_at is not None:
            result.started_at.CopyFrom(self.started_at)
        return workers_pb2.WorkerMessage(result=result)

    def log_fields(self, worker_id: str) -> dict[str, object]:
        return {
            "worker_id": worker_id,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "correlation_id": self.correlation_id or None,
        }


def end_span(span: Span | None, error: str = "") -> None:
    """End an attempt's span (if traced and not ended yet), with `error` as its status."""
    if span is None or not span.is_recording():
        return
    if error:
        span.set_status(StatusCode.ERROR, error)
    span.end()
