"""The e2e report's charts from a real burst: `pytest features/ -k throughput` on a
local platform, its report read back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.harness.feature_runs import run_features

pytestmark = pytest.mark.integration


def test_a_real_burst_draws_charts_that_add_up_to_its_jobs(tmp_path: Path, run_temp: Path) -> None:
    # In Spanish: the unit tests render both languages; this one the words of a real run.
    report = run_features(
        tmp_path, "-k", "throughput", "--report-lang", "es", timeout_s=180, temp_dir=run_temp
    )
    assert report["_returncode"] == 0, report["_stdout"][-2000:]
    (burst,) = [s for s in report["scenarios"] if "throughput" in s["tags"]]
    jobs = int(burst["metrics"]["burst_jobs"])
    # The times are the jobs table's, one row per burst job, every one finished.
    assert len(burst["job_times"]) == jobs == 40
    assert all(t["finished_at"] >= t["created_at"] for t in burst["job_times"])
    charts = {c["code"]: c for c in report["charts"]}
    assert set(charts) == {"CHART_THROUGHPUT", "CHART_LATENCY"}
    for chart in charts.values():
        assert sum(chart["values"]) == jobs
        assert len(chart["values"]) == len(chart["x_labels"]) <= 30
    text = (tmp_path / "latest.md").read_text()
    assert "### Gráficos" in text and "Rendimiento: jobs terminados" in text
    bars = re.findall(r"```mermaid\nxychart-beta\n.*?\n    bar \[(.*?)\]\n```", text, re.S)
    assert [sum(map(float, b.split(", "))) for b in bars] == [jobs, jobs]
