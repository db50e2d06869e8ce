"""The settings group of a worker (`worker`): its slots, prefetch, labels, how it
batches its jobs' output and how it stops. Declared like every other group
(hodei.setting_groups); import it from hodei.settings."""

from __future__ import annotations

from hodei.setting_groups import _Group, setting


class WorkerSettings(_Group):
    name: str = setting("", "HODEI_WORKER_NAME", "name shown in `hodei workers`", flag="--name")
    slots: int = setting(
        1, "HODEI_SLOTS", "jobs a worker runs at once", flag="--slots", ge=1, le=1024
    )
    prefetch: int | None = setting(
        None,
        "HODEI_WORKER_PREFETCH",
        "jobs a worker holds beyond its slots, started as slots free (default: adaptive, "
        "more while its jobs are short, none while they are long; 0: none)",
        flag="--prefetch",
        ge=0,
        le=1024,
    )
    labels: str = setting(
        "",
        "HODEI_WORKER_LABELS",
        "the worker's labels, K=V,K2=V2: a job with a selector runs only where they match",
        flag="--labels",
        pattern=r"^\s*([^=,\s][^=,]*=[^,]*)?(\s*,\s*[^=,\s][^=,]*=[^,]*)*\s*$",
    )

    @property
    def prefetch_adaptive(self) -> bool:
        return self.prefetch is None

    @property
    def prefetch_count(self) -> int:
        """HODEI_WORKER_PREFETCH, or where the adaptive default starts: the slots, at
        most 32 (hodei.domain.prefetch adjusts it as jobs end)."""
        return min(self.slots, 32) if self.prefetch is None else self.prefetch

    @property
    def label_map(self) -> dict[str, str]:
        """HODEI_WORKER_LABELS as a mapping ("pool=docker,gpu=1" -> {pool: docker, gpu: 1})."""
        pairs = (item.partition("=") for item in self.labels.split(",") if item.strip())
        return {key.strip(): value.strip() for key, _, value in pairs}

    # A job that ends within it is reported by its JobResult alone: one message and one
    # server statement fewer for the jobs of a few milliseconds (benchmarks/RESULTS.md).
    start_hold: float = setting(
        0.005,
        "HODEI_WORKER_START_HOLD",
        "how long a job's start may wait to be sent with its end, s (0: at once)",
        ge=0,
        le=1,
    )
    log_batch_lines: int = setting(
        2000, "HODEI_LOG_BATCH_LINES", "most output lines per message to the server", ge=1
    )
    log_batch_interval: float = setting(
        0.05, "HODEI_LOG_BATCH_INTERVAL", "longest wait before output is sent, s", gt=0
    )
    reconnect_max_backoff: float = setting(
        10.0, "HODEI_RECONNECT_MAX_BACKOFF", "longest delay between reconnect attempts, s", gt=0
    )
    kill_grace: float = setting(
        5.0, "HODEI_WORKER_KILL_GRACE", "SIGTERM -> SIGKILL delay when a job is stopped, s", ge=0
    )
    # On SIGINT/SIGTERM: how long running jobs may finish before they are stopped,
    # then how long to wait for the server to confirm the buffered results.
    shutdown_grace: float = setting(
        30.0, "HODEI_WORKER_SHUTDOWN_GRACE", "on SIGTERM, how long running jobs may finish, s", ge=0
    )
    flush_timeout: float = setting(
        5.0,
        "HODEI_WORKER_FLUSH_TIMEOUT",
        "on SIGTERM, how long to wait for the server to confirm results, s",
        ge=0,
    )
    max_line_bytes: int = setting(
        1024 * 1024, "HODEI_WORKER_MAX_LINE_BYTES", "a longer output line is split, bytes", ge=64
    )
    # Beyond it the job's pipe is not read (the job waits on its writes) until the
    # server catches up.
    log_buffer_bytes: int = setting(
        256 * 1024 * 1024,
        "HODEI_WORKER_LOG_BUFFER_BYTES",
        "output of one job held unconfirmed by the server, bytes",
        ge=1024,
    )
