"""Per-scenario records: name, tags, each step's status and time, the error, metrics.

Filled from pytest-bdd's hooks and pytest's reports, then appended by each pytest
process to its own JSONL file in the run's records directory (pytest-bdd 9.0.1's
cucumberjson is empty under xdist), which the controller merges into the report.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from harness.e2e_run import append_record
from harness.options import TAGS
from harness.root_cause import BlockedByRootCause
from hodei.report.model import Phrase, ScenarioRecord, Status, StepRecord

#: The scenario's record while it runs (a dict: the scenario's fixtures fill metrics
#: and job_ids in it too).
RECORD = pytest.StashKey[dict[str, Any]]()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " | ") or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:2000]


def record_of(node: pytest.Item | Any) -> dict[str, Any]:
    record: dict[str, Any] = node.stash.setdefault(RECORD, {})
    return record


def scenario_started(node: Any, feature: Any, scenario: Any) -> None:
    rec = record_of(node)
    rec.update(
        name=scenario.name,
        feature=feature.name,
        tags=sorted(set(scenario.tags) | set(feature.tags)),
        all_steps=[f"{step.keyword} {step.name}" for step in scenario.steps],
        order=f"{feature.rel_filename}:{scenario.line_number:06d}",
        steps=[],
        t0=time.monotonic(),
    )
    rec.setdefault("metrics", {})


def step_started(node: Any) -> None:
    record_of(node)["step_t0"] = time.monotonic()


def step_ended(node: Any, step: Any, error: BaseException | None = None) -> None:
    rec = record_of(node)
    if isinstance(error, BlockedByRootCause):
        rec["caused_by"] = error.cause.code
    rec.setdefault("steps", []).append(
        StepRecord(
            name=f"{step.keyword} {step.name}",
            status=Status.PASS if error is None else Status.FAIL,
            duration_s=round(time.monotonic() - rec.get("step_t0", time.monotonic()), 4),
            error="" if error is None else one_line(error),
            error_phrase=_phrase(error),
        )
    )


def _phrase(error: BaseException | None) -> Phrase | None:
    """A wait's error as a phrase (the report says it in its language)."""
    make = getattr(error, "phrase", None)
    return Phrase.model_validate(make()) if callable(make) else None


def note_report(
    item: pytest.Item,
    report: pytest.TestReport,
    call: pytest.CallInfo[None],
    records_dir: Path | None,
) -> None:
    """Note a setup/call/teardown report in the scenario's record; at teardown, write
    the record to records_dir."""
    rec = item.stash.get(RECORD, None)
    if rec is None and report.when == "setup" and not report.passed and _is_scenario(item):
        rec = _never_started(item)
    if rec is None:
        return
    if report.failed and "error" not in rec:
        rec["status"] = Status.FAIL
        rec["error"] = _report_error(report, call)
    elif report.skipped and "status" not in rec:
        rec["status"] = Status.SKIP
        rec["error"] = _skip_reason(report)
    if report.when == "teardown" and records_dir is not None:
        append_record(
            records_dir,
            f"p{os.getpid()}",
            _finished(item, rec),
            job_ids=list(rec.get("job_ids", [])),
            order=rec.get("order", ""),
        )


def _never_started(item: pytest.Item) -> dict[str, Any]:
    # The scenario never started (a fixture failed or skipped): record it all the same.
    doc = (getattr(item, "obj", None).__doc__ or item.name).split(": ", 1)
    return item.stash.setdefault(
        RECORD,
        {
            "name": doc[-1],
            "feature": doc[0] if len(doc) > 1 else "",
            "tags": sorted(m.name for m in item.iter_markers() if m.name in TAGS),
            "t0": time.monotonic(),
        },
    )


def _is_scenario(item: pytest.Item) -> bool:
    # pytest-bdd scenario functions take its `_pytest_bdd_example` fixture.
    return "_pytest_bdd_example" in getattr(item, "fixturenames", ())


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _report_error(report: pytest.TestReport, call: pytest.CallInfo[None]) -> str:
    if call.excinfo is not None:
        return one_line(call.excinfo.value)
    return str(report.longreprtext).strip().splitlines()[-1][:2000] if report.longreprtext else ""


def _finished(item: pytest.Item, rec: dict[str, Any]) -> ScenarioRecord:
    steps: list[StepRecord] = list(rec.get("steps", []))
    status = rec.get("status", Status.PASS)
    for name in rec.get("all_steps", [])[len(steps) :]:
        # Steps that never ran: after a failure, or from the one that called pytest.skip.
        reason = (
            rec.get("error", "")
            if status == Status.SKIP and not any(s.status == Status.SKIP for s in steps)
            else "not run"
        )
        steps.append(StepRecord(name=name, status=Status.SKIP, duration_s=0.0, error=reason))
    return ScenarioRecord(
        name=rec.get("name", item.name),
        feature=rec.get("feature", ""),
        tags=list(rec.get("tags", [])),
        status=status,
        duration_s=round(time.monotonic() - rec.get("t0", time.monotonic()), 4),
        steps=steps,
        error=rec.get("error", ""),
        metrics={k: float(v) for k, v in rec.get("metrics", {}).items()},
        caused_by=rec.get("caused_by", ""),
        job_times=list(rec.get("job_times", [])),
    )
