"""The run record the harness hands to the report builder, and writing the report.

Contract (docs/harness-handoff.md): the harness measures, the builder judges.
`E2ERun` carries only observations; `hodei.report.build_e2e_report(run)`
turns it into a `Report` (findings, checklist, metrics, timeline) and
`hodei.report.render_markdown(report, lang)` renders it.
"""

from __future__ import annotations

import importlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.launchers.base import Deployment
from hodei.report.model import DatabaseSnapshot, LogScan, Report, ScenarioRecord, Status


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


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def scenario_from_dict(data: dict[str, Any]) -> ScenarioRecord:
    from hodei.report.model import StepRecord

    steps = [
        StepRecord(
            name=s["name"],
            status=Status(s["status"]),
            duration_s=float(s["duration_s"]),
            error=s.get("error", ""),
        )
        for s in data.get("steps", [])
    ]
    return ScenarioRecord(
        name=data["name"],
        feature=data["feature"],
        tags=list(data.get("tags", [])),
        status=Status(data["status"]),
        duration_s=float(data["duration_s"]),
        steps=steps,
        error=data.get("error", ""),
        metrics={k: float(v) for k, v in data.get("metrics", {}).items()},
    )


def read_records(records_dir: Path) -> list[ScenarioRecord]:
    """Merge every process's JSONL (one line per scenario) in the order of the feature
    files and of the scenarios in them, whichever process ran them."""
    keyed: list[tuple[str, str, str, ScenarioRecord]] = []
    for path in sorted(records_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                data = json.loads(line)
                record = scenario_from_dict(data)
                keyed.append((data.get("order", ""), record.feature, record.name, record))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


def append_record(
    records_dir: Path,
    process_tag: str,
    record: ScenarioRecord,
    job_ids: list[str] | None = None,
    order: str = "",
) -> None:
    """`order` ("<feature file>:<line>") puts the merged records in the features' order."""
    records_dir.mkdir(parents=True, exist_ok=True)
    line = {**asdict(record), "job_ids": list(job_ids or []), "order": order}
    with (records_dir / f"{process_tag}.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, default=str) + "\n")


def read_job_ids(records_dir: Path) -> dict[str, list[str]]:
    """Scenario name -> ids of the jobs it queued, from every process's JSONL."""
    out: dict[str, list[str]] = {}
    for path in sorted(records_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                data = json.loads(line)
                out.setdefault(data["name"], []).extend(data.get("job_ids", []))
    return out


def _builder() -> tuple[Any, Any]:
    """The report engineer's builder and renderer, or (None, None) until they land."""
    try:
        module = importlib.import_module("hodei.report")
    except ImportError:
        return None, None
    return getattr(module, "build_e2e_report", None), getattr(module, "render_markdown", None)


def write_report(run: E2ERun, report_dir: Path, lang: str) -> tuple[Path, list[str]]:
    """Build and write the report; return (path of the Markdown or JSON, notes)."""
    notes: list[str] = []
    build, render = _builder()
    report_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    report: Report
    if build is None:
        # Never pretend: without the builder there are no findings, and we say so.
        notes.append(
            "hodei.report.build_e2e_report is not available: the report holds "
            "the raw observations only (no findings, no checklist)"
        )
        report = Report(
            kind="e2e",
            generated_at=run.finished_at,
            version=_version(),
            target=_target(run),
            scenarios=run.scenarios,
            snapshot_before=run.snapshot_before,
            snapshot_after=run.snapshot_after,
            log_scans=run.log_scans,
            duration_s=run.duration_s,
            verdict=Status.FAIL
            if any(s.status == Status.FAIL for s in run.scenarios)
            else Status.PASS,
        )
    else:
        report = build(run)
    json_path = report_dir / "latest.json"
    json_path.write_text(report.to_json(), encoding="utf-8")
    shutil.copyfile(json_path, report_dir / f"e2e-report-{stamp}.json")
    if render is None:
        notes.append("hodei.report.render_markdown is not available: no Markdown written")
        return json_path, notes
    markdown = render(report, lang)
    md_path = report_dir / f"e2e-report-{stamp}.md"
    md_path.write_text(markdown, encoding="utf-8")
    (report_dir / "latest.md").write_text(markdown, encoding="utf-8")
    return md_path, notes


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("hodei")
    except Exception:
        return "unknown"


def _target(run: E2ERun) -> dict[str, Any]:
    from hodei.redaction import redact

    dep = run.deployment
    if dep is None:
        return {"mode": run.launcher, "error": run.launch_error}
    return {
        "mode": dep.mode,
        "database_url": redact(dep.database_url),
        "server_address": dep.server_address,
        "processes": [
            {
                "role": p.role,
                "name": p.name,
                "pid": p.pid,
                "log_path": str(p.log_path) if p.log_path else "",
            }
            for p in dep.processes
        ],
    }
