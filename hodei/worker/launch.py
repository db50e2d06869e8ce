"""Starting the process of an attempt the agent accepted, and waiting for its end.

The agent decides (accept or refuse RunJob, what the end means on the wire); this
module does the process side: the JobProcess built from RunJob and the settings, its
lines into the attempt's buffer, the pause while that buffer is full, the start and the
end handed back to the agent.

Its log lines name no job in `extra=`: the agent starts the attempt inside the job's
log context (hodei.log_context), which the attempt's task keeps, so they all get the
job's id, attempt, worker and correlation id."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from opentelemetry import trace
from opentelemetry.trace import StatusCode

from hodei.api.v1 import workers_pb2
from hodei.metrics import WorkerMetrics
from hodei.settings import Settings
from hodei.tracing import job_attributes
from hodei.worker.attempt import Attempt, Key, attempt_env, wall_clock
from hodei.worker.guard import JobGuard
from hodei.worker.runner import JobProcess, Outcome, RunResult
from hodei.worker.wakeups import Wakeups

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

#: Called with the attempt and how its process ended.
OnEnd = Callable[[Attempt, RunResult], None]


class Launcher:
    def __init__(
        self,
        settings: Settings,
        base_env: Mapping[str, str],
        guard: JobGuard | None,
        wakeups: Wakeups,
        holds: Callable[[Key], bool],
        on_end: OnEnd,
        metrics: WorkerMetrics,
    ) -> None:
        self.settings = settings
        self.base_env = dict(base_env)
        #: Kills the jobs' process groups if this worker dies (hodei.worker.guard).
        self.guard = guard
        self.wakeups = wakeups
        #: Whether the agent still holds an attempt (a dropped one stops waiting).
        self.holds = holds
        self.on_end = on_end
        self.metrics = metrics

    def start(self, att: Attempt, run: workers_pb2.RunJob, worker_id: str) -> None:
        """Spawn the attempt's process now and wait for its end in a task."""
        received = time.perf_counter()  # RunJob is handled synchronously up to here
        # The process object exists before the task runs, so a CancelJob or a
        # shutdown arriving right after RunJob finds it (and stops it before it starts).
        spawn = (
            None
            if att.span is None
            else tracer.start_span(
                "spawn",
                context=trace.set_span_in_context(att.span),
                attributes=job_attributes(att.job_id, att.correlation_id, att.attempt, worker_id),
            )
        )
        att.process = self._make_process(att, run)
        # Started here rather than in the task: the spawn does not wait for the task to
        # be scheduled behind the stream's other work (about a millisecond under load).
        try:
            early = att.process.start(self._started_callback(att, received))
        except Exception as exc:  # a bug here must not take the stream down
            logger.exception("job runner failed")
            early = RunResult(Outcome.FAILED, None, f"worker error: {exc}")
        if spawn is not None:
            if att.pid is not None:
                spawn.set_attribute("process.pid", att.pid)
            if early is not None:
                spawn.set_status(StatusCode.ERROR, early.error or str(early.outcome))
            spawn.end()
        att.task = asyncio.create_task(
            self._wait(att, early), name=f"job-{att.job_id}-{att.attempt}"
        )

    def _make_process(self, att: Attempt, run: workers_pb2.RunJob) -> JobProcess:
        drop_logs = self.settings.faults.drop_logs
        logs = att.logs
        wakeups = self.wakeups

        mask = att.mask.lines if att.mask else None

        log_bytes = self.metrics.log_bytes

        def on_lines(is_stderr: bool, lines: list[bytes], ts_ns: int) -> None:
            # Counted as read, before anything else: the result reports these figures
            # beside what the server stored, so output lost on the way is seen.
            size = sum(map(len, lines))
            att.lines_read += len(lines)
            att.bytes_read += size
            log_bytes.inc(size)
            if drop_logs:
                return
            if mask is not None:  # before buffering: a secret is never sent, so never stored
                lines = mask(lines)
            logs.append(is_stderr, lines, ts_ns, time.monotonic())
            wakeups.send.set()

        buffer_cap = self.settings.worker.log_buffer_bytes

        async def room() -> None:
            # Output the server has not confirmed is capped; the job waits on its
            # writes meanwhile (as it would on a full pipe).
            while logs.held_bytes > buffer_cap and self.holds(att.key):
                wakeups.persisted.clear()
                await wakeups.persisted.wait()

        return JobProcess(
            list(run.command),
            # The attempt's identity last: a job can tag what it does with it (a
            # command that must not act twice records HODEI_JOB_ID/HODEI_JOB_ATTEMPT).
            env={**self.base_env, **run.env, **run.secret_env, **attempt_env(att)},
            working_dir=run.working_dir,
            timeout=run.timeout_seconds or None,
            on_lines=on_lines,
            kill_grace=self.settings.worker.kill_grace,
            max_line_bytes=self.settings.worker.max_line_bytes,
            is_full=lambda: logs.held_bytes > buffer_cap,
            room=room,
            guard=self.guard,
        )

    async def _wait(self, att: Attempt, early: RunResult | None) -> None:
        assert att.process is not None
        try:
            result = early or await att.process.wait()
        except Exception as exc:  # a bug here must not take the worker down
            logger.exception("job runner failed")
            result = RunResult(Outcome.FAILED, None, f"worker error: {exc}")
        att.running = False
        self.on_end(att, result)

    def _started_callback(self, att: Attempt, received: float) -> Callable[[int], None]:
        spawn_seconds = self.metrics.spawn_seconds
        clock_offset = self.settings.faults.clock_offset_s

        def on_started(pid: int) -> None:
            spawn_seconds.observe(time.perf_counter() - received)
            att.pid = pid
            att.started_at = wall_clock(clock_offset)
            # At DEBUG: the one INFO line per job is written when it finishes (logging
            # was a tenth of the worker's CPU with two or three lines per job).
            logger.debug("job started pid=%d: %s", pid, att.command)
            self.wakeups.send.set()

        return on_started
