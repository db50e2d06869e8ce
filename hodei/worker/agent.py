"""The worker agent: job slots, the attempts it holds, and what it says on the stream.

Its process side is hodei.worker.launch, its heartbeat hodei.worker.heartbeat, its
graceful stop hodei.worker.shutdown; they share the agent's events (hodei.worker.wakeups).

The agent is independent of the connection: it keeps running its jobs and
buffering their lines and results while the stream is down. On every new
stream (`on_welcome`) everything the server has not confirmed is sent again,
attempt by attempt in protocol order: JobAck, JobStarted, the lines from the
last `Persisted.next_line`, then the JobResult. The server treats repeats as
no-ops and deduplicates lines by `LogBatch.first_line`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import time
from collections.abc import Mapping

from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from hodei import __version__ as hodei_version
from hodei.api.v1 import workers_pb2
from hodei.errors import HodeiError
from hodei.log_context import job_context
from hodei.metrics import WorkerMetrics
from hodei.redaction import SecretMask
from hodei.settings import Settings
from hodei.tracing import context_of, job_attributes
from hodei.worker.attempt import Attempt, Key, end_span, wall_clock
from hodei.worker.guard import JobGuard
from hodei.worker.launch import Launcher
from hodei.worker.prefetched import Prefetched
from hodei.worker.runner import Outcome, RunResult
from hodei.worker.wakeups import Wakeups

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class WorkerUnknown(HodeiError):
    """The server does not know this worker id (NOT_FOUND): register again."""

    code = "NOT_FOUND"


class WorkerAgent:
    def __init__(
        self,
        settings: Settings,
        base_env: Mapping[str, str],
        guard: JobGuard | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or WorkerMetrics()
        self.metrics.slots.set(settings.worker.slots)
        self.metrics.slots_busy.set_function(lambda: self.running_count)
        self.worker_id = ""
        #: Register's per-registration secret; every Hello carries it. Never logged.
        self._session_secret = ""
        self.heartbeat_interval = settings.recovery.heartbeat_interval
        self.connected = False  # a stream is open and the server welcomed us
        self.draining = False
        #: The server reads WorkerMessage.batch (its Welcome said so).
        self.batches = False
        self._attempts: dict[Key, Attempt] = {}
        #: Jobs held beyond the slots (hodei.worker.prefetched).
        self._prefetched = Prefetched(
            settings.worker.slots,
            settings.worker.prefetch_count,
            settings.worker.prefetch_adaptive,
        )
        self._control: collections.deque[workers_pb2.WorkerMessage] = collections.deque()
        self.wakeups = Wakeups()
        self._launcher = Launcher(
            settings,
            base_env,
            guard,
            self.wakeups,
            self._attempts.__contains__,
            self._ended,
            self.metrics,
        )
        #: Which held attempt _poll looks at first (it rotates: see there).
        self._first = 0
        self._unwritten = False  # next_outgoing gave a message not yet written

    # ---- what the connection asks -------------------------------------------------

    def register_request(self) -> workers_pb2.RegisterRequest:
        return workers_pb2.RegisterRequest(
            name=self.settings.worker.name or f"{socket.gethostname()}-{os.getpid()}",
            hostname=socket.gethostname(),
            pid=os.getpid(),
            slots=self.settings.worker.slots,
            version=hodei_version,
            labels=self.settings.worker.label_map,
        )

    def on_registered(self, response: workers_pb2.RegisterResponse) -> None:
        self.worker_id = response.worker_id
        self._session_secret = response.session_secret
        if response.heartbeat_interval_ms:
            self.heartbeat_interval = response.heartbeat_interval_ms / 1000.0
        logger.info("worker registered", extra={"worker_id": self.worker_id})

    def hello(self) -> workers_pb2.WorkerMessage:
        return workers_pb2.WorkerMessage(
            hello=workers_pb2.Hello(
                worker_id=self.worker_id,
                running=[a.ref for a in self._attempts.values()],
                slots=self.settings.worker.slots,
                batches=True,  # this worker reads ServerMessage.batch
                session_secret=self._session_secret,
                sent_at=self.clock(),
                prefetch=self.prefetch,
            )
        )

    def heartbeat_message(self, prefetch: int | None = None) -> workers_pb2.WorkerMessage:
        """What the worker holds and how many jobs it would take now (none while
        draining); with `prefetch`, the new prefetch it asks for."""
        slots = self.settings.worker.slots
        free = 0 if self.draining else max(slots - self.running_count, 0)
        heartbeat = workers_pb2.Heartbeat(
            running=[a.ref for a in self._attempts.values()], free_slots=free, sent_at=self.clock()
        )
        if prefetch is not None:
            heartbeat.prefetch = prefetch
        return workers_pb2.WorkerMessage(heartbeat=heartbeat)

    def clock(self) -> Timestamp:
        """This worker's wall clock, sent with Hello and heartbeats: the server stores
        the skew from the database's clock (a testing setting can shift it)."""
        return wall_clock(self.settings.faults.clock_offset_s)

    def on_welcome(self, welcome: workers_pb2.Welcome) -> None:
        for ref in welcome.superseded:
            self._drop((ref.job_id, ref.attempt), "the server gave the attempt to someone else")
        self.connected = True
        self.batches = welcome.batches
        if self.draining:
            # Stopping: say so on every new stream (a Hello makes the worker READY
            # again on the server, and a Draining queued on a lost stream was dropped).
            self._control.append(_msg(draining=workers_pb2.Draining()))
        self.wakeups.send.set()
        self.wakeups.stream_opened.set()
        logger.info(
            "stream open",
            extra={
                "worker_id": self.worker_id,
                "server_id": welcome.server_id or None,
                "count": len(self._attempts),
            },
        )

    def on_disconnected(self) -> None:
        """The stream is gone: forget what was sent on it; resend it on the next one."""
        self.connected = False
        self.batches = False
        self._control.clear()
        self._unwritten = False
        self._resend_unconfirmed()

    def _resend_unconfirmed(self) -> None:
        """Send again everything the server has not confirmed; it ignores repeats."""
        now = time.monotonic()
        for att in self._attempts.values():
            att.ack_sent = att.started_sent = att.result_sent = False
            att.logs.rewind(now)
        self.wakeups.send.set()

    def handle(self, message: workers_pb2.ServerMessage) -> None:
        kind = message.WhichOneof("payload")
        if kind == "run":
            self._on_run(message.run)
        elif kind == "cancel":
            self._on_cancel(message.cancel)
        elif kind == "persisted":
            self._on_persisted(message.persisted)
        elif kind == "rejected":
            self._on_rejected(message.rejected)
        elif kind == "batch":
            for inner in message.batch.messages:
                self.handle(inner)
        elif kind == "welcome":
            self.on_welcome(message.welcome)
        else:
            logger.error(
                "unknown message from the server: %s", kind, extra={"worker_id": self.worker_id}
            )

    async def next_outgoing(self) -> workers_pb2.WorkerMessage | bytes:
        """The next message to write on the stream; waits until there is one."""
        message = await self._next_outgoing()
        self._unwritten = True
        return message

    def poll_outgoing(self) -> workers_pb2.WorkerMessage | bytes | None:
        """The next message if one is ready now (to write it with the previous one)."""
        message, _ = self._poll()
        if message is not None:
            self._unwritten = True
        return message

    async def _next_outgoing(self) -> workers_pb2.WorkerMessage | bytes:
        wake = self.wakeups.send
        while True:
            wake.clear()
            message, timeout = self._poll()
            if message is not None:
                return message
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)

    def _poll(self) -> tuple[workers_pb2.WorkerMessage | bytes | None, float | None]:
        """The next message in protocol order, or None and how long until a log batch
        is due (None: until something happens)."""
        if self._control:
            return self._control.popleft(), None
        batch_lines = self.settings.worker.log_batch_lines
        interval = self.settings.worker.log_batch_interval
        hold = self.settings.worker.start_hold
        now = time.monotonic()
        timeout: float | None = None
        attempts = list(self._attempts.values())
        # Round robin so that one chatty job cannot starve the others.
        self._first = (self._first + 1) % max(len(attempts), 1)
        for att in attempts[self._first :] + attempts[: self._first]:
            message, due = att.next_message(now, batch_lines, interval, hold)
            if message is not None:
                return message, None
            if due is not None:
                timeout = due if timeout is None else min(timeout, due)
        return None, timeout

    # ---- server commands --------------------------------------------------------------

    def _fields(self, job_id: str, attempt: int, correlation_id: str = "") -> dict[str, object]:
        return {
            "worker_id": self.worker_id,
            "job_id": job_id,
            "attempt": attempt,
            "correlation_id": correlation_id or None,
        }

    def _on_run(self, run: workers_pb2.RunJob) -> None:
        key = (run.ref.job_id, run.ref.attempt)
        fields = self._fields(*key, run.correlation_id)
        # The attempt's task is created inside: it keeps this context, so every line
        # logged while the job runs names it (hodei.log_context).
        with job_context(**fields):
            self._on_run_in_context(run, key, fields)

    def _on_run_in_context(
        self, run: workers_pb2.RunJob, key: Key, fields: dict[str, object]
    ) -> None:
        logger.debug("RunJob received")  # the job context names it
        if key in self._attempts:
            logger.info("repeated RunJob for an attempt already held", extra=fields)
            self._attempts[key].ack_sent = False  # ack it again
            self.wakeups.send.set()
            return
        reason = ""
        slots = self.settings.worker.slots
        prefetched = self._prefetched
        if self.draining:
            reason = "worker is shutting down"
        elif self.running_count >= slots and prefetched.full:
            reason = (
                f"no free slot ({self.running_count} of {slots} busy, "
                f"{prefetched.waiting} of {prefetched.count} prefetched)"
            )
        if reason:
            logger.info("job refused: %s", reason, extra=fields)
            self.send(_msg(ack=workers_pb2.JobAck(ref=run.ref, accepted=False, reason=reason)))
            return
        mask = SecretMask(run.secret_env.values())
        command = " ".join(run.command)
        if mask:  # a secret passed in argv too: not even the DEBUG line shows it
            command = mask.lines([command.encode()])[0].decode()
        att = Attempt(run.ref.job_id, run.ref.attempt, run.correlation_id, command[:200], mask)
        if self.settings.tracing.enabled:
            # A child of the server's dispatch span: the job's trace goes on here.
            att.span = tracer.start_span(
                "RunJob",
                context=context_of(run.trace_context),
                kind=SpanKind.CONSUMER,
                attributes=job_attributes(
                    run.ref.job_id, run.correlation_id, run.ref.attempt, self.worker_id
                ),
            )
        self._attempts[key] = att
        if self.running_count > slots:  # counted with this one: no slot free, it waits
            prefetched.hold(att, run)
            logger.debug("job prefetched: waits for a free slot")
        else:
            att.launched_at = time.monotonic()
            self._launcher.start(att, run, self.worker_id)
        self.wakeups.send.set()

    def _start_waiting(self) -> None:
        """Start prefetched attempts while slots are free (a process just ended)."""
        while self.running_count < self.settings.worker.slots:
            taken = self._prefetched.take(self._attempts.get)
            if taken is None:
                return
            att, run = taken
            att.launched_at = time.monotonic()
            with job_context(**att.log_fields(self.worker_id)):
                self._launcher.start(att, run, self.worker_id)
            self.wakeups.send.set()

    def give_back_waiting(self) -> int:
        """Hand every prefetched attempt back to the server (the worker is stopping):
        JobAck(accepted=false) requeues it at once. Returns how many."""
        given = 0
        while (taken := self._prefetched.take(self._attempts.get)) is not None:
            att, _ = taken
            del self._attempts[att.key]
            att.running = False
            reason = "worker shut down before the job started"
            end_span(att.span, reason)
            self.send(_msg(ack=workers_pb2.JobAck(ref=att.ref, accepted=False, reason=reason)))
            given += 1
        if given:
            logger.info(
                "%d prefetched job(s) handed back to the server",
                given,
                extra={"worker_id": self.worker_id},
            )
            self.wakeups.changed.set()
        return given

    def _ended(self, att: Attempt, result: RunResult) -> None:
        """An attempt's process ended (hodei.worker.launch): its result is sent, or,
        stopped by our shutdown, the job is handed back."""
        fields = att.log_fields(self.worker_id)
        logs = att.logs
        if att.give_back:
            # Not the job's fault: JobAck(accepted=false) makes the server requeue it
            # at once (another attempt) instead of recording a final state.
            self._attempts.pop(att.key, None)
            reason = "worker shut down before the job finished"
            end_span(att.span, reason)
            self.send(_msg(ack=workers_pb2.JobAck(ref=att.ref, accepted=False, reason=reason)))
            logger.warning(
                "job stopped by the worker's shutdown; handed back to the server", extra=fields
            )
            self.wakeups.changed.set()
            return
        att.finish(result)
        self.metrics.jobs.labels(str(result.outcome)).inc()
        # The command is not on this INFO line (it may carry secrets passed in argv);
        # it is on the DEBUG "job started" line.
        logger.info(
            "job finished: %s exit_code=%s pid=%s lines=%d %s",
            result.outcome,
            result.exit_code,
            att.pid,
            logs.total,
            result.error,
            extra=fields,
        )
        self.wakeups.send.set()
        self.wakeups.changed.set()
        self._adapt_prefetch(att)
        if not self.draining:
            self._start_waiting()

    def _adapt_prefetch(self, att: Attempt) -> None:
        was = self._prefetched.count
        changed = self._prefetched.job_ended(att)
        if changed is None:
            return
        logger.debug(
            "prefetch %d -> %d (typical run %.1f ms)",
            was,
            changed,
            (self._prefetched.typical_run_s or 0) * 1000,
            extra={"worker_id": self.worker_id},
        )
        self.send(self.heartbeat_message(prefetch=changed))  # the server deals by it

    def _on_cancel(self, cancel: workers_pb2.CancelJob) -> None:
        key = (cancel.ref.job_id, cancel.ref.attempt)
        att = self._attempts.get(key)
        if att is None:
            logger.warning(
                "CancelJob for an attempt this worker does not hold", extra=self._fields(*key)
            )
            return
        fields = att.log_fields(self.worker_id)
        if att.queued:
            # Prefetched, never started: cancelled here, its result says so.
            logger.info("cancelling prefetched job: %s", cancel.reason, extra=fields)
            att.queued = att.running = False
            self._ended(att, RunResult(Outcome.CANCELLED, None, cancel.reason or "cancelled"))
            return
        if not att.running or att.process is None:
            return  # finished already; its result tells the server
        logger.info("cancelling job (force=%s): %s", cancel.force, cancel.reason, extra=fields)
        att.process.cancel(force=cancel.force, reason=cancel.reason or "cancelled")

    def _on_persisted(self, persisted: workers_pb2.Persisted) -> None:
        key = (persisted.ref.job_id, persisted.ref.attempt)
        att = self._attempts.get(key)
        if att is None:
            return
        att.logs.persisted(persisted.next_line)
        self.wakeups.send.set()  # the log window may have room again
        self.wakeups.persisted.set()
        if persisted.result_persisted and not att.running:
            del self._attempts[key]
            self.wakeups.changed.set()
            logger.debug("attempt done", extra=att.log_fields(self.worker_id))

    def _on_rejected(self, rejected: workers_pb2.Rejected) -> None:
        key = (rejected.ref.job_id, rejected.ref.attempt)
        fields = self._fields(*key) if rejected.ref.job_id else {"worker_id": self.worker_id}
        if not rejected.ref.job_id:
            if rejected.code == "NOT_FOUND":
                raise WorkerUnknown(rejected.message or "worker not registered")
            if rejected.code in ("INTERNAL", "UNAVAILABLE"):
                # The server could not apply a message (its database, say); which one
                # is unknown, so everything unconfirmed goes again (repeats are no-ops).
                logger.warning(
                    "server could not apply a message [%s]: %s; resending",
                    rejected.code,
                    rejected.message,
                    extra=fields,
                )
                self._resend_unconfirmed()
                return
            logger.error(
                "server rejected a message [%s]: %s", rejected.code, rejected.message, extra=fields
            )
            return
        if rejected.code in ("FAILED_PRECONDITION", "NOT_FOUND"):
            logger.warning(
                "server rejected the attempt [%s]: %s",
                rejected.code,
                rejected.message,
                extra=fields,
            )
            self._drop(key, rejected.message)
        else:
            # INVALID_ARGUMENT and the rest mean a protocol bug on our side.
            logger.error(
                "server rejected a message [%s]: %s", rejected.code, rejected.message, extra=fields
            )

    def _drop(self, key: Key, why: str) -> None:
        """Forget an attempt that is no longer ours, killing its process."""
        att = self._attempts.pop(key, None)
        if att is None:
            return
        self.wakeups.persisted.set()  # a job paused on its buffer must see it is gone
        if att.running and att.process is not None:
            logger.warning("killing superseded job: %s", why, extra=att.log_fields(self.worker_id))
            att.process.cancel(force=True, reason=why)
            end_span(att.span, f"dropped: {why}")
        self.wakeups.changed.set()

    def send(self, message: workers_pb2.WorkerMessage) -> None:
        """Queue a control message (an ack, a heartbeat) for the open stream."""
        if self.connected:  # control messages are not kept across reconnects
            self._control.append(message)
            self.wakeups.send.set()

    # ---- state ---------------------------------------------------------------------------

    @property
    def running_count(self) -> int:
        """Attempts holding a slot: started (or starting), process not ended yet."""
        return sum(1 for a in self._attempts.values() if a.running and not a.queued)

    @property
    def prefetch(self) -> int:
        """How many jobs this worker takes beyond its slots now."""
        return self._prefetched.count

    @property
    def prefetched_count(self) -> int:
        return sum(1 for a in self._attempts.values() if a.queued)

    @property
    def held(self) -> list[Attempt]:
        return list(self._attempts.values())

    @property
    def all_written(self) -> bool:
        """Every control message, and the last message given out, was written."""
        return not self._control and not self._unwritten

    # ---- the connection's writes --------------------------------------------------------

    def on_written(self) -> None:
        """The connection wrote the last message `next_outgoing` gave it."""
        self._unwritten = False
        if not self._control:
            self.wakeups.changed.set()


def _msg(**payload: object) -> workers_pb2.WorkerMessage:
    return workers_pb2.WorkerMessage(**payload)  # type: ignore[arg-type]
