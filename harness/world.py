"""The functions Gherkin steps call: one step sentence, one method here.

`World` is one scenario's state (the job it queued, the CLI run, the log
capture, its metrics) on top of the session's shared `E2EContext` (deployment,
driver, tables). Every wait goes through harness.waits, so a failure says what
was awaited, for how long and what was last seen; that text is the step's error
in the report.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.expect import expect
from harness.waits import Said, WaitTimeout, wait_for
from hodei.diagnose.evidence import file_size, grpc_errors_in
from hodei.report.model import JobTimes

if TYPE_CHECKING:
    from concurrent.futures import Future

    from harness.chaos.scene import ChaosScene
    from harness.context import E2EContext
    from harness.driver import JobView, LogCapture
    from harness.prometheus_scene import PrometheusScene
    from harness.providers_scene import ProvidersScene

#: Domain events that change a job's state, and the state each one leads to.
EVENT_STATE = {
    "JobCreated": "PENDING",
    "JobRequeued": "PENDING",
    "JobAssigned": "ASSIGNED",
    "JobStarted": "RUNNING",
    "JobSucceeded": "SUCCEEDED",
    "JobFailed": "FAILED",
    "JobCancelled": "CANCELLED",
    "JobTimedOut": "TIMED_OUT",
}
FINAL_STATES = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}

JOB_TIMEOUT_S = 15.0
CLI_TIMEOUT_S = 30.0


def _split(items: str) -> list[str]:
    return [part.strip() for part in items.split(",") if part.strip()]


def _is_subsequence(wanted: list[str], seen: list[str]) -> bool:
    it = iter(seen)
    return all(any(item == s for s in it) for item in wanted)


def hodei_cli() -> list[str]:
    """The `hodei` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "hodei"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hodei.cli.main"]


@dataclass
class World:
    ctx: E2EContext
    metrics: dict[str, float] = field(default_factory=dict)
    #: Ids of the jobs this scenario queued (the report draws the lifecycle timeline
    #: from their domain events).
    job_ids: list[str] = field(default_factory=list)
    #: The burst's jobs' times from the jobs table (the report's charts).
    job_times: list[JobTimes] = field(default_factory=list)
    job: JobView | None = None
    burst: list[str] = field(default_factory=list)
    burst_started: float = 0.0
    cli: subprocess.CompletedProcess[str] | None = None
    capture_future: Future[LogCapture] | None = None
    log_offsets: dict[str, int] = field(default_factory=dict)
    chaos: ChaosScene | None = None
    #: The @metrics scenario's Prometheus (harness.prometheus_scene), stopped at close.
    prometheus: PrometheusScene | None = None
    #: The @providers scenario's scaling server (harness.providers_scene), its worker
    #: containers removed at close.
    providers: ProvidersScene | None = None

    # -- given ----------------------------------------------------------------
    def platform_is_running(self) -> None:
        status = self.ctx.driver.health()
        assert status == "SERVING", f"server {self.ctx.server_address} health is {status}"

    def require_process_control(self) -> None:
        if not self.ctx.can_kill_processes:
            pytest.skip(self.ctx.no_kill_reason)

    def require_log_files(self) -> None:
        if not self.ctx.log_files():
            pytest.skip(f"the {self.ctx.mode} launcher gives no process log files to scan")

    # -- health -----------------------------------------------------------------
    def database_answers(self) -> None:
        elapsed = self.ctx.tables.ping()
        self.metrics["db_roundtrip_ms"] = round(elapsed * 1000, 2)
        assert elapsed < 1.0, f"SELECT 1 took {elapsed:.3f}s"

    def migrations_applied(self) -> None:
        from harness.tables import PLATFORM_TABLES
        from hodei.db.migrate import latest_version

        version = self.ctx.tables.schema_version()
        assert version == latest_version(), (
            f"schema version {version}, the platform ships {latest_version()}"
        )
        present = self.ctx.tables.tables_present()
        assert present == len(PLATFORM_TABLES), (
            f"{present} of the {len(PLATFORM_TABLES)} platform tables exist"
        )

    def grpc_health_serving(self) -> None:
        start = time.perf_counter()
        status = self.ctx.driver.health()
        self.metrics["grpc_health_ms"] = round((time.perf_counter() - start) * 1000, 2)
        assert status == "SERVING", f"grpc.health.v1 says {status}"

    def port_listening(self) -> None:
        host, _, port = self.ctx.server_address.rpartition(":")
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            pass

    # -- workers ----------------------------------------------------------------
    def workers_ready(self, count: int) -> None:
        def probe() -> list[str]:
            return [str(w.state) for w in self.ctx.driver.workers() if w.connected]

        wait_for(
            Said(
                "WAIT_WORKERS_READY",
                "at least {count} connected worker(s) READY or BUSY",
                count=count,
            ),
            probe,
            lambda states: sum(s in ("READY", "BUSY") for s in states) >= count,
            timeout_s=10.0,
        )

    def heartbeats_advance(self) -> None:
        def beats() -> dict[str, float]:
            return {
                w.id: w.last_heartbeat.timestamp() if w.last_heartbeat else 0.0
                for w in self.ctx.driver.workers()
                if w.connected
            }

        before = beats()
        assert before, "no connected worker to watch"

        def probe() -> dict[str, float]:
            now = beats()
            return {wid: now.get(wid, 0.0) - ts for wid, ts in before.items()}

        # Three heartbeat periods: one late beat is tolerated, a stopped one is not.
        wait_for(
            Said("WAIT_HEARTBEATS", "every connected worker's last_heartbeat to advance"),
            probe,
            lambda advance: all(d > 0 for d in advance.values()),
            timeout_s=max(3 * self.ctx.heartbeat_period_s, 5.0),
        )

    # -- jobs -------------------------------------------------------------------
    def queue_shell(self, script: str, timeout_s: float = 0.0) -> None:
        started = time.perf_counter()
        self.job = self.ctx.driver.queue(["sh", "-c", script], timeout_s=timeout_s, name="e2e")
        self.metrics.setdefault("queue_rpc_ms", round((time.perf_counter() - started) * 1000, 2))
        self.job_ids.append(self.job.id)
        # ASSIGNED too: with eager dispatch the creating transaction may also assign it
        # (its events still read JobCreated(PENDING), JobAssigned).
        assert self.job.state in ("PENDING", "ASSIGNED"), (
            f"a new job is {self.job.state}, not PENDING (or ASSIGNED by eager dispatch)"
        )

    def queue_shell_following_logs(self, script: str) -> None:
        self.queue_shell(script)
        assert self.job is not None
        self.capture_future = self.ctx.driver.follow_logs(self.job.id, JOB_TIMEOUT_S)

    def _job_id(self) -> str:
        assert self.job is not None, "no job was queued in this scenario"
        return self.job.id

    def job_reaches(self, state: str, timeout_s: float = JOB_TIMEOUT_S) -> None:
        job_id = self._job_id()

        def done(view: JobView) -> bool:
            # Reaching another final state means it never will reach `state`.
            return view.state == state or (view.state in FINAL_STATES and state != view.state)

        self.job = wait_for(
            Said("WAIT_JOB_STATE", "job {job} to reach {state}", job=job_id, state=state),
            lambda: self.ctx.driver.get(job_id),
            done,
            timeout_s,
            describe=lambda v: (
                f"{v.state} (attempts={v.attempts}, exit={v.exit_code}, error={v.error!r})"
            ),
            give_up=self.ctx.give_up,
        )
        expect(
            self.job.state == state,
            "CHK_JOB_ENDED",
            "job {job} ended {got} instead of {state} (exit={exit}, error={error!r})",
            job=job_id,
            got=self.job.state,
            state=state,
            exit=self.job.exit_code,
            error=self.job.error,
        )

    def exit_code_is(self, code: int) -> None:
        assert self.job is not None
        expect(
            self.job.exit_code == code,
            "CHK_EXIT_CODE",
            "exit code {got}, expected {code}",
            got=self.job.exit_code,
            code=code,
        )

    def attempts_are(self, attempts: int) -> None:
        assert self.job is not None
        expect(
            self.job.attempts == attempts,
            "CHK_ATTEMPTS",
            "{got} attempts, expected {attempts}",
            got=self.job.attempts,
            attempts=attempts,
        )

    def cancel_job(self) -> None:
        self.ctx.driver.cancel(self._job_id())

    def job_left_queue(self) -> None:
        job_id = self._job_id()
        wait_for(
            Said("WAIT_JOB_DEQUEUED", "job {job} to be gone from job_queue", job=job_id),
            lambda: self.ctx.tables.job_queued(job_id),
            lambda q: not q,
            timeout_s=3.0,
            give_up=self.ctx.give_up,
        )

    def state_history_is(self, states: str) -> None:
        job_id = self._job_id()
        wanted = _split(states)
        history = [EVENT_STATE[e] for e in self.ctx.tables.job_events(job_id) if e in EVENT_STATE]
        expect(
            history == wanted,
            "CHK_HISTORY",
            "job {job} went through {history}, expected {wanted}",
            job=job_id,
            history=history,
            wanted=wanted,
        )

    def events_in_order(self, events: str) -> None:
        job_id = self._job_id()
        wanted = _split(events)
        seen = self.ctx.tables.job_events(job_id)
        expect(
            _is_subsequence(wanted, seen),
            "CHK_EVENTS",
            "domain events of {job}: {seen}; wanted {wanted}",
            job=job_id,
            seen=seen,
            wanted=wanted,
        )

    def outbox_matches_events(self) -> None:
        job_id = self._job_id()
        events = self.ctx.tables.job_events(job_id)
        rows = self.ctx.tables.job_outbox(job_id)
        expect(
            len(rows) == len(events),
            "CHK_OUTBOX_ROWS",
            "job {job} has {events} domain events but {rows} outbox rows",
            job=job_id,
            events=len(events),
            rows=len(rows),
        )

    def outbox_published(self) -> None:
        job_id = self._job_id()
        wait_for(
            Said("WAIT_OUTBOX", "every outbox row of job {job} to have published_at", job=job_id),
            lambda: self.ctx.tables.job_outbox(job_id),
            lambda rows: bool(rows) and all(pub for _, pub in rows),
            timeout_s=3.0,
            describe=lambda rows: f"{sum(p for _, p in rows)}/{len(rows)} published",
        )

    # -- logs -------------------------------------------------------------------
    def run_with_cli(self, script: str) -> None:
        argv = [*hodei_cli(), "job", "run", "--", "sh", "-c", script]
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.ctx.cli_env(),
        )
        what = Said("WAIT_CLI", "`hodei job run` to exit")
        try:
            # The CLI waits for its job: poll it, so that a known root cause ends the
            # wait at once instead of after CLI_TIMEOUT_S.
            while proc.poll() is None:
                waited = time.perf_counter() - started
                reason = self.ctx.give_up(what, waited)
                if reason is not None:
                    raise reason
                if waited > CLI_TIMEOUT_S:
                    raise WaitTimeout(what, waited, "still running")
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.kill()
            out, err = proc.communicate(timeout=10)
        self.cli = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        self.metrics["cli_job_run_s"] = round(time.perf_counter() - started, 3)

    def cli_exit_code(self, code: int) -> None:
        assert self.cli is not None
        expect(
            self.cli.returncode == code,
            "CHK_CLI_EXIT",
            "`hodei job run` exited {got}, expected {code}; stderr: {stderr!r}",
            got=self.cli.returncode,
            code=code,
            stderr=self.cli.stderr.strip()[-300:],
        )

    def cli_printed(self, stream: str, lines: str) -> None:
        assert self.cli is not None
        text = self.cli.stdout if stream == "stdout" else self.cli.stderr
        wanted = [shlex.split(x)[0] if x.startswith('"') else x for x in _split(lines)]
        got = text.splitlines()
        received = self.metrics.get("log_lines_received", 0.0)
        self.metrics["log_lines_received"] = received + sum(1 for w in wanted if w in got)
        self.metrics["log_lines_expected"] = self.metrics.get("log_lines_expected", 0.0) + len(
            wanted
        )
        n = len(wanted)
        expect(
            any(got[i : i + n] == wanted for i in range(len(got) - n + 1)),
            "CHK_CLI_LINES",
            "CLI {stream} lacks the log lines {wanted} (in order); got {got}",
            stream=stream,
            wanted=wanted,
            got=got[-10:],
        )

    def subscription_received(self, stdout: str, stderr: str) -> None:
        assert self.capture_future is not None, "no log subscription was started"
        future = self.capture_future
        wait_for(
            Said("WAIT_SUBSCRIPTION", "the log subscription to end"),
            future.done,
            bool,
            JOB_TIMEOUT_S + 5,
            poll_s=0.1,
            give_up=self.ctx.give_up,
        )
        capture = future.result(timeout=1)
        # Recorded before the checks, so that the report sees what did (not) arrive.
        self.metrics["log_lines_received"] = float(len(capture.lines))
        self.metrics["log_lines_expected"] = float(len(_split(stdout)) + len(_split(stderr)))
        expect(
            not capture.error,
            "CHK_SUBSCRIBE_FAILED",
            "SubscribeLogs failed: {error}",
            error=capture.error,
        )
        expect(capture.ended, "CHK_SUBSCRIBE_OPEN", "SubscribeLogs did not end when the job ended")
        for name, got, want in (
            ("stdout", capture.stdout(), _split(stdout)),
            ("stderr", capture.stderr(), _split(stderr)),
        ):
            expect(
                got == want,
                "CHK_STREAM_LINES",
                "log stream: {stream} lines {got}, expected {wanted}",
                stream=name,
                got=got,
                wanted=want,
            )
        seqs = capture.sequences
        expect(
            seqs == sorted(set(seqs)),
            "CHK_SEQUENCES",
            "sequence numbers not strictly increasing: {seqs}",
            seqs=seqs,
        )

    # -- recovery ---------------------------------------------------------------
    def kill_job_worker(self) -> None:
        job_id = self._job_id()
        holder = [w for w in self.ctx.driver.workers() if job_id in w.running_job_ids]
        assert holder, f"no worker reports job {job_id} as running"
        self.ctx.kill_worker(holder[0].pid)

    def start_replacement_worker(self) -> None:
        self.ctx.start_worker()

    # -- keepalive ----------------------------------------------------------------
    def stay_idle(self, periods: int) -> None:
        self.log_offsets = {str(p): file_size(p) for p in self.ctx.log_files()}
        period = self.ctx.keepalive_period_s
        time.sleep(periods * period + 0.5)
        self.metrics["idle_watched_s"] = periods * period + 0.5

    def no_grpc_errors_since_idle(self) -> None:
        found: list[str] = []
        for name, offset in self.log_offsets.items():
            found += [f"{Path(name).name}: {line}" for line in grpc_errors_in(Path(name), offset)]
        expect(
            not found,
            "CHK_GRPC_LINES",
            "{count} gRPC stream error line(s): {lines}",
            count=len(found),
            lines=found[:5],
        )

    # -- throughput ---------------------------------------------------------------
    def queue_burst(self, count: int, script: str) -> None:
        self.burst_started = time.perf_counter()
        self.burst = [
            self.ctx.driver.queue(["sh", "-c", script], name=f"burst-{i}").id for i in range(count)
        ]

    def burst_finishes(self, state: str, timeout_s: float) -> None:
        ids = self.burst
        counts: dict[str, Any] = wait_for(
            Said(
                "WAIT_BURST", "all {count} burst jobs to reach {state}", count=len(ids), state=state
            ),
            lambda: self.ctx.tables.states_of(ids),
            lambda c: sum(c.values()) == len(ids) and all(s in FINAL_STATES for s in c),
            timeout_s,
            poll_s=0.1,
            give_up=self.ctx.give_up,
        )
        if counts != {state: len(ids)}:
            expect(
                False,
                "CHK_BURST",
                "burst ended as {counts}; e.g. {sample}",
                counts=counts,
                sample=self.ctx.tables.jobs_not_in(ids, state),
            )
        wall = time.perf_counter() - self.burst_started
        self.metrics["burst_jobs"] = float(len(ids))
        self.metrics["burst_wall_s"] = round(wall, 3)

    def record_throughput(self) -> None:
        span = self.ctx.tables.span_of(self.burst)
        assert span > 0, "the burst took no measurable time"
        self.metrics["jobs_per_min"] = round(len(self.burst) / span * 60.0, 1)
        self.job_times[:] = self.ctx.tables.job_times(self.burst)

    # -- chaos (a private platform: the shared one is never broken) ---------------
    def start_chaos_platform(self) -> None:
        if self.ctx.mode != "local":
            pytest.skip(f"chaos scenarios run on the local launcher only, not {self.ctx.mode}")
        from harness.chaos.scene import ChaosScene

        self.chaos = ChaosScene()
        self.chaos.start()

    def _chaos(self) -> ChaosScene:
        assert self.chaos is not None, "no chaos platform was started in this scenario"
        return self.chaos

    def kill_server_during_burst(self, jobs: int) -> None:
        from harness.chaos.scene import trial_metrics

        self.metrics.update(trial_metrics(self._chaos().server_kill(jobs)))

    def restart_database_during_burst(self, jobs: int) -> None:
        from harness.chaos.scene import trial_metrics

        self.metrics.update(trial_metrics(self._chaos().database_restart(jobs)))

    def chaos_jobs_ran_once(self) -> None:
        trial = self._chaos().last_trial()
        counts = (trial.lost, trial.ran_twice, trial.duplicates)
        assert counts == (0, 0, 0), f"{trial.summary()}; {'; '.join(trial.notes)}"

    def chaos_no_tracebacks(self) -> None:
        trial = self._chaos().last_trial()
        assert trial.tracebacks == 0, (
            f"{trial.tracebacks} traceback(s) in the process logs under "
            f"{self._chaos().platform_logs()}"
        )

    def close(self) -> None:
        """Scenario teardown: stop what the scenario started for itself."""
        if self.capture_future is not None and not self.capture_future.done():
            # A scenario that gave up early (a known root cause) leaves its log
            # subscription open: end it, or the driver's loop closes on a pending task.
            self.capture_future.cancel()
        if self.chaos is not None:
            self.chaos.close()
            self.chaos = None
        if self.prometheus is not None:
            self.prometheus.close()
            self.prometheus = None
        if self.providers is not None:
            self.providers.close()
            self.providers = None
