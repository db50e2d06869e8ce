"""The e2e run history: one JSON line per run in `<report dir>/history.jsonl`, and the
comparison of two runs ("since the previous run", `hodei e2e --compare A B`).

A line holds what a later run is compared on: the run id, its time, launcher and
injected faults, each component's status, the problems by finding code, and the
throughput and latency figures. Lines a reader cannot parse are skipped: the file is
appended to by every run and may be cut short by a crash.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hodei.report.catalogue import component_name, say
from hodei.report.model import Report

HISTORY_FILE = "history.jsonl"

#: Figures compared between runs, and whether a higher value is better.
FIGURES: dict[str, bool] = {
    "jobs_per_min": True,
    "burst_wall_s": False,
    "db_roundtrip_ms": False,
    "grpc_health_ms": False,
    "queue_rpc_ms": False,
    "dispatch_ms": False,
    "job_run_ms": False,
    "cli_job_run_s": False,
    "duration_s": False,
}


class HistoryError(Exception):
    """A run reference that names no run; the message is one line for the user."""


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str
    time: str
    launcher: str = ""
    faults: list[str] = Field(default_factory=list)
    verdict: str = ""
    root_cause: str = ""
    components: dict[str, str] = Field(default_factory=dict)
    problems: dict[str, str] = Field(default_factory=dict)  # finding code -> severity
    figures: dict[str, float] = Field(default_factory=dict)
    report: str = ""


class Comparison(BaseModel):
    before: HistoryEntry
    after: HistoryEntry
    new: list[str] = Field(default_factory=list)
    fixed: list[str] = Field(default_factory=list)
    same: list[str] = Field(default_factory=list)
    #: name -> (before, after, after - before), for figures both runs measured.
    figures: dict[str, tuple[float, float, float]] = Field(default_factory=dict)
    #: component -> (status before, status after), where it changed.
    components: dict[str, tuple[str, str]] = Field(default_factory=dict)


def _ms(start: Any, end: Any) -> float | None:
    try:
        a = datetime.fromisoformat(str(start).replace(" ", "T").replace("+00", "+00:00"))
        b = datetime.fromisoformat(str(end).replace(" ", "T").replace("+00", "+00:00"))
    except ValueError:
        return None
    return round((b - a).total_seconds() * 1000, 1)


def entry_of(
    report: Report, run_id: str, launcher: str, faults: list[str], path: str
) -> HistoryEntry:
    """The history line of a finished e2e report."""
    figures: dict[str, float] = {}
    for s in report.scenarios:
        for key in FIGURES:
            if key in s.metrics:
                figures[key] = float(s.metrics[key])
    at = {e.event_type: e.occurred_at for e in report.timeline}
    for key, (a, b) in {
        "dispatch_ms": ("JobCreated", "JobAssigned"),
        "job_run_ms": ("JobStarted", "JobSucceeded"),
    }.items():
        if a in at and b in at:
            value = _ms(at[a], at[b])
            if value is not None:
                figures[key] = value
    figures["duration_s"] = round(report.duration_s, 3)
    return HistoryEntry(
        run_id=run_id,
        time=report.generated_at,
        launcher=launcher,
        faults=sorted(faults),
        verdict=report.verdict.value,
        root_cause=report.root_cause_code,
        components={c.component: c.status.value for c in report.components},
        problems={f.code: f.severity for f in report.findings},
        figures=figures,
        report=path,
    )


def read_history(path: Path) -> list[HistoryEntry]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(HistoryEntry.model_validate_json(line))
        except (ValidationError, ValueError):
            continue
    return entries


def append_entry(path: Path, entry: HistoryEntry) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(entry.model_dump_json() + "\n")


def resolve(entries: list[HistoryEntry], ref: str, path: Path) -> HistoryEntry:
    """A run by id (or a unique prefix of one), `latest` or `previous`."""
    if not entries:
        raise HistoryError(f"no run recorded in {path}: run `hodei e2e` first")
    if ref == "latest":
        return entries[-1]
    if ref == "previous":
        if len(entries) < 2:
            raise HistoryError(f"only one run is recorded in {path}: there is no previous run")
        return entries[-2]
    exact = [e for e in entries if e.run_id == ref]
    found = exact or [e for e in entries if e.run_id.startswith(ref)]
    if len(found) == 1:
        return found[0]
    if found:
        raise HistoryError(f"{ref!r} matches {len(found)} runs in {path}; give more of the id")
    raise HistoryError(
        f"no run {ref!r} in {path} ({len(entries)} recorded, latest {entries[-1].run_id}); "
        "use a run id, `latest` or `previous`"
    )


def compare(before: HistoryEntry, after: HistoryEntry) -> Comparison:
    a, b = set(before.problems), set(after.problems)
    figures = {
        name: (
            before.figures[name],
            after.figures[name],
            after.figures[name] - before.figures[name],
        )
        for name in FIGURES
        if name in before.figures and name in after.figures
    }
    components = {
        c: (before.components.get(c, "—"), after.components.get(c, "—"))
        for c in sorted(set(before.components) | set(after.components))
        if before.components.get(c) != after.components.get(c)
    }
    return Comparison(
        before=before,
        after=after,
        new=sorted(b - a),
        fixed=sorted(a - b),
        same=sorted(a & b),
        figures=figures,
        components=components,
    )


def _signed(value: float) -> str:
    return f"{value:+.1f}"


def comparison_lines(cmp: dict[str, Any] | Comparison, lang: str) -> list[str]:
    """The comparison as sentences in `lang` (the report's section and the CLI's output)."""
    c = cmp if isinstance(cmp, Comparison) else Comparison.model_validate(cmp)
    none = say({"code": "HIST_NONE"}, lang)

    def codes(items: list[str]) -> str:
        return ", ".join(items) if items else none

    before = c.before
    lines = [
        say(
            {
                "code": "HIST_AGAINST",
                "params": {
                    "run_id": before.run_id,
                    "when": before.time,
                    "launcher": before.launcher or "?",
                    "faults": ", ".join(before.faults) or none,
                },
            },
            lang,
        ),
        say({"code": "HIST_NEW", "params": {"codes": codes(c.new)}}, lang),
        say({"code": "HIST_FIXED", "params": {"codes": codes(c.fixed)}}, lang),
    ]
    if c.same:
        lines.append(say({"code": "HIST_SAME", "params": {"codes": codes(c.same)}}, lang))
    for name, (was, now, delta) in c.figures.items():
        lines.append(
            say(
                {
                    "code": "HIST_FIGURE",
                    "params": {
                        "name": name,
                        "before": f"{was:g}",
                        "after": f"{now:g}",
                        "delta": _signed(delta),
                    },
                },
                lang,
            )
        )
    for comp, (was_s, now_s) in c.components.items():
        lines.append(
            say(
                {
                    "code": "HIST_COMPONENT",
                    "params": {
                        "component": component_name(comp, lang),
                        "before": was_s,
                        "after": now_s,
                    },
                },
                lang,
            )
        )
    return lines


def comparison_json(cmp: Comparison) -> dict[str, Any]:
    return json.loads(cmp.model_dump_json())
