"""One e2e run as the harness observed it (`E2ERun`), the per-process scenario records
it is merged from, and writing its report.

The harness measures, the report builder judges: `E2ERun` carries only observations;
`hodei.report.build_e2e_report(run)` turns it into a `Report` (findings, checklist,
metrics, timeline) and `hodei.report.render_markdown(report, lang)` renders it.
Scenario records cross process boundaries (pytest-xdist) as JSONL lines of the
report model, validated when read back.
"""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from harness.launchers.base import Deployment
from hodei.report import build_e2e_report, render_markdown
from hodei.report.history import (
    HISTORY_FILE,
    append_entry,
    compare,
    comparison_json,
    entry_of,
    read_history,
)
from hodei.report.model import DatabaseSnapshot, LogScan, Phrase, ScenarioRecord


@dataclass
class E2ERun:
    launcher: str  # "local" | "live" | "containers"
    deployment: Deployment | None  # None when the platform never came up
    started_at: str  # ISO 8601 UTC
    finished_at: str
    duration_s: float
    scenarios: list[ScenarioRecord] = field(default_factory=list)
    log_scans: list[LogScan] = field(default_factory=list)
    snapshot_before: DatabaseSnapshot | None = None
    snapshot_after: DatabaseSnapshot | None = None
    #: Faults injected on purpose (local launcher): "dispatcher_off", "outbox_relay_off",
    #: "worker_drop_logs". The builder must not use them to decide findings; tests do.
    faults: list[str] = field(default_factory=list)
    #: GetServerInfo at the end of the run ({} when the server did not answer).
    server_info: dict[str, Any] = field(default_factory=dict)
    #: ListWorkers(include_gone=True) at the end: id, name, pid, state, connected.
    workers: list[dict[str, Any]] = field(default_factory=list)
    #: Harness-level failures, one line each: "platform did not start: ...",
    #: "after-snapshot failed: ...". A non-empty launch error means nothing ran.
    launch_error: str = ""
    errors: list[str] = field(default_factory=list)
    #: Where the processes' logs are (local launcher), for debug commands.
    log_dir: str = ""
    #: Scenario name -> ids of the jobs it queued (all labelled hodei.io/test=true).
    scenario_jobs: dict[str, list[str]] = field(default_factory=dict)
    #: Domain events (hodei.diagnose.probes.lifecycle_events rows: event_type, aggregate_type,
    #: aggregate_id, actor, occurred_at) of the @lifecycle scenario's job, in order:
    #: the report's Mermaid timeline of one job's lifecycle.
    lifecycle_events: list[dict[str, Any]] = field(default_factory=list)
    #: The launcher's start-up times: server_start_s, workers_ready_s, workers.
    timings: dict[str, float] = field(default_factory=dict)
    #: What becomes of the deployment after the run (a hodei.report.model.Phrase):
    #: kept and how to start it again, or gone.
    deployment_note: Phrase | None = None
    #: Set by write_report: the run's id in reports/history.jsonl.
    run_id: str = ""


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class RecordLine(BaseModel):
    """One line of a process's JSONL: a scenario as it ran, where it sits in the
    features, and the jobs it queued. Read back validated by the report model."""

    scenario: ScenarioRecord
    #: "<feature file>:<line>": puts the merged records in the features' order.
    order: str = ""
    job_ids: list[str] = Field(default_factory=list)


def _read_lines(records_dir: Path) -> list[RecordLine]:
    return [
        RecordLine.model_validate_json(line)
        for path in sorted(records_dir.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def read_records(records_dir: Path) -> list[ScenarioRecord]:
    """Merge every process's JSONL (one line per scenario) in the order of the feature
    files and of the scenarios in them, whichever process ran them."""
    lines = _read_lines(records_dir)
    lines.sort(key=lambda r: (r.order, r.scenario.feature, r.scenario.name))
    return [r.scenario for r in lines]


def append_record(
    records_dir: Path,
    process_tag: str,
    record: ScenarioRecord,
    job_ids: list[str] | None = None,
    order: str = "",
) -> None:
    """`order` ("<feature file>:<line>") puts the merged records in the features' order."""
    records_dir.mkdir(parents=True, exist_ok=True)
    line = RecordLine(scenario=record, order=order, job_ids=list(job_ids or []))
    with (records_dir / f"{process_tag}.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(line.model_dump_json() + "\n")


def read_job_ids(records_dir: Path) -> dict[str, list[str]]:
    """Scenario name -> ids of the jobs it queued, from every process's JSONL."""
    out: dict[str, list[str]] = {}
    for r in _read_lines(records_dir):
        out.setdefault(r.scenario.name, []).extend(r.job_ids)
    return out


def write_report(run: E2ERun, report_dir: Path, lang: str) -> tuple[Path, list[str]]:
    """Build and write the report (latest.json/.md and a time-stamped copy of each),
    compare it with the previous run of `report_dir`'s history and append this run to
    it; return (path of the Markdown, notes for the terminal)."""
    notes: list[str] = []
    report_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run.run_id = f"{stamp}-{secrets.token_hex(2)}"
    report = build_e2e_report(run)
    md_path = report_dir / f"e2e-report-{stamp}.md"
    history_path = report_dir / HISTORY_FILE
    history = read_history(history_path)
    entry = entry_of(report, run.run_id, run.launcher, run.faults, str(md_path))
    if history:
        report.since_previous = comparison_json(compare(history[-1], entry))
    json_path = report_dir / "latest.json"
    json_path.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    shutil.copyfile(json_path, report_dir / f"e2e-report-{stamp}.json")
    markdown = render_markdown(report, lang)
    md_path.write_text(markdown, encoding="utf-8")
    (report_dir / "latest.md").write_text(markdown, encoding="utf-8")
    append_entry(history_path, entry)
    notes.append(f"run {run.run_id} recorded in {history_path}")
    return md_path, notes
