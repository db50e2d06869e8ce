"""Rendering for people (aligned tables, key: value blocks) and for scripts (JSON)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from hodei.client.views import JobView, ProviderView, QueueView, ServerInfoView, WorkerView
from hodei.durations import age_since
from hodei.redaction import masked_env


def print_json(data: Any, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO | None = None
) -> None:
    out = out or sys.stdout
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out.write(fmt.format(*headers).rstrip() + "\n")
    for row in rows:
        out.write(fmt.format(*row).rstrip() + "\n")


def print_fields(pairs: Sequence[tuple[str, str]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    width = max((len(k) for k, _ in pairs), default=0) + 1
    for key, value in pairs:
        out.write(f"{key + ':':<{width}} {value}\n")


def age(when: datetime | None, now: datetime | None = None) -> str:
    """'3.0 s ago', '5 min ago', '-' for never (the reports' formatter, hodei.durations)."""
    return age_since(when, now)


def stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z" if when else "-"


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def command_text(command: Sequence[str]) -> str:
    import shlex

    return shlex.join(command)


def exit_text(job: JobView) -> str:
    return "-" if job.exit_code is None else str(job.exit_code)


def jobs_table(jobs: Sequence[JobView]) -> None:
    rows = [
        [
            j.id,
            shorten(j.name, 20) or "-",
            j.state.value,
            exit_text(j),
            f"{j.attempts}/{j.max_attempts}",
            age(j.created_at),
            shorten(command_text(j.command), 40),
        ]
        for j in jobs
    ]
    print_table(["ID", "NAME", "STATE", "EXIT", "ATTEMPTS", "CREATED", "COMMAND"], rows)


def job_fields(job: JobView) -> None:
    pairs = [
        ("id", job.id),
        ("name", job.name or "-"),
        ("state", job.state.value),
        ("command", command_text(job.command)),
        ("exit code", exit_text(job)),
        ("error", job.error or "-"),
        ("attempts", f"{job.attempts}/{job.max_attempts}"),
        ("worker", job.worker_id or "-"),
        ("timeout", f"{job.timeout_seconds:g} s" if job.timeout_seconds else "none"),
        ("working dir", job.working_dir or "-"),
        ("env", " ".join(f"{k}={v}" for k, v in sorted(job.env.items())) or "-"),
        (
            "secret env",
            " ".join(f"{k}={v}" for k, v in sorted(masked_env(job.secret_env).items())) or "-",
        ),
        ("labels", " ".join(f"{k}={v}" for k, v in sorted(job.labels.items())) or "-"),
        ("correlation id", job.correlation_id or "-"),
        ("created", stamp(job.created_at)),
        ("assigned", stamp(job.assigned_at)),
        ("started", stamp(job.started_at)),
        ("finished", stamp(job.finished_at)),
    ]
    print_fields(pairs)


def workers_table(workers: Sequence[WorkerView]) -> None:
    rows = [
        [
            w.id,
            shorten(w.name, 20) or "-",
            w.state.value,
            f"{len(w.running_job_ids)}/{w.slots}",
            "yes" if w.connected else "no",
            age(w.last_heartbeat),
            str(w.pid),
            w.hostname,
        ]
        for w in workers
    ]
    print_table(["ID", "NAME", "STATE", "RUNNING", "CONNECTED", "HEARTBEAT", "PID", "HOST"], rows)


def providers_table(providers: Sequence[ProviderView]) -> None:
    def health(p: ProviderView) -> str:
        if p.circuit_open:
            return "circuit open"
        return "ok" if p.healthy else "unreachable"

    rows = [
        [
            p.name,
            p.type,
            str(p.priority),
            f"{p.workers}/{p.max_workers}" if p.max_workers else str(p.workers),
            ",".join(f"{k}={v}" for k, v in p.tags.items()) or "-",
            health(p),
            age(p.checked_at),
            shorten(p.last_error or p.detail, 60) or "-",
        ]
        for p in providers
    ]
    print_table(
        ["NAME", "TYPE", "PRIORITY", "WORKERS", "TAGS", "HEALTH", "CHECKED", "DETAIL"], rows
    )


def queue_block(queue: QueueView) -> None:
    counts = " ".join(f"{state}={n}" for state, n in queue.job_counts.items()) or "-"
    print_fields(
        [
            ("queued", str(queue.depth)),
            ("oldest", f"{queue.oldest_age_seconds:.1f} s" if queue.depth else "-"),
            ("jobs by state", counts),
        ]
    )
    if queue.jobs:
        sys.stdout.write("\n")
        rows = [
            [q.job_id, shorten(q.name, 20) or "-", str(q.attempts), age(q.enqueued_at)]
            for q in queue.jobs
        ]
        print_table(["JOB ID", "NAME", "ATTEMPTS", "ENQUEUED"], rows)


def server_fields(info: ServerInfoView) -> list[tuple[str, str]]:
    return [
        ("server version", info.version),
        ("server id", info.server_id),
        ("started", stamp(info.started_at)),
        ("schema version", str(info.schema_version)),
        ("dispatcher", "enabled" if info.dispatcher_enabled else "DISABLED"),
        ("last dispatch cycle", age(info.dispatcher_last_cycle_at)),
        ("outbox relay", "enabled" if info.outbox_relay_enabled else "DISABLED"),
        ("connected workers", str(info.connected_workers)),
        (
            "authentication",
            "OFF (insecure: anyone who reaches the server may do anything)"
            if info.insecure
            else "required",
        ),
    ]
