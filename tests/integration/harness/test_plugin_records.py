"""Per-process scenario records, their merge, and the report when nothing could start."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.e2e_run import append_record, read_job_ids, read_records
from hodei.report.model import ScenarioRecord, Status, StepRecord
from tests.integration.harness.feature_runs import run_dirs, run_features

pytestmark = pytest.mark.integration


def _record(name: str, feature: str, status: Status) -> ScenarioRecord:
    return ScenarioRecord(
        name=name,
        feature=feature,
        tags=["e2e"],
        status=status,
        duration_s=1.5,
        steps=[
            StepRecord(name="Given the platform is running", status=Status.PASS, duration_s=0.01),
            StepRecord(
                name="Then the job reaches state SUCCEEDED",
                status=status,
                duration_s=1.2,
                error="" if status == Status.PASS else "timed out after 15.0s waiting",
            ),
        ],
        error="" if status == Status.PASS else "WaitTimeout: timed out",
        metrics={"jobs_per_min": 900.0} if status == Status.PASS else {},
    )


def test_records_from_several_processes_merge_in_a_stable_order(tmp_path: Path) -> None:
    append_record(tmp_path, "p2", _record("b", "Feature B", Status.FAIL), job_ids=["j2"])
    append_record(tmp_path, "p1", _record("a", "Feature B", Status.PASS), job_ids=["j1"])
    append_record(tmp_path, "p1", _record("z", "Feature A", Status.SKIP))
    merged = read_records(tmp_path)
    assert [(r.feature, r.name) for r in merged] == [
        ("Feature A", "z"),
        ("Feature B", "a"),
        ("Feature B", "b"),
    ]
    b = merged[2]
    assert b.status == Status.FAIL and b.steps[1].status == Status.FAIL
    assert b.steps[1].error.startswith("timed out")
    assert merged[1].metrics == {"jobs_per_min": 900.0}
    assert read_job_ids(tmp_path) == {"b": ["j2"], "a": ["j1"], "z": []}


def test_a_platform_that_cannot_start_still_gives_a_report_naming_it(
    tmp_path: Path, run_temp: Path
) -> None:
    # Port 1 on loopback: nothing listens, the local launcher cannot create its database.
    report = run_features(
        tmp_path,
        "-k",
        "layer",
        "--database-url",
        "postgresql://postgres@127.0.0.1:1/postgres",
        timeout_s=120,
        temp_dir=run_temp,
    )
    assert report["_returncode"] != 0
    assert report["verdict"] == "FAIL"
    scenario = report["scenarios"][0]
    assert scenario["status"] == "FAIL"
    assert "platform did not start" in scenario["error"]
    assert "cannot create the run database" in report["root_cause"] + scenario["error"]
    # The run directory of a run that failed is kept and named.
    (kept,) = run_dirs(run_temp)
    assert f"hodei e2e run directory (kept: the run failed): {kept}" in report["_stdout"]
