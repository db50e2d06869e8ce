"""hodei.report.charts: a burst's throughput and latency charts, from the job times of a
real run of features/08_throughput.feature (burst_times.json), as Mermaid xychart-beta
blocks in both languages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hodei.report import build_e2e_report, render_markdown
from hodei.report.charts import (
    MAX_LATENCY_BARS,
    MAX_THROUGHPUT_BARS,
    burst_charts,
    latency_chart,
    mermaid_xychart,
    throughput_chart,
)
from hodei.report.diagnose_report import build_diagnose_report
from hodei.report.model import Chart, JobTimes, ScenarioRecord, Status
from tests.unit.report.samples import e2e_run, seed_like_snapshot

FIXTURE = Path(__file__).with_name("burst_times.json")


@pytest.fixture(scope="module")
def times() -> list[JobTimes]:
    raw = json.loads(FIXTURE.read_text())["job_times"]
    return [JobTimes.model_validate(t) for t in raw]


def parse_block(block: str) -> dict[str, object]:
    """The parts of an xychart-beta block, checking its structure line by line."""
    lines = block.splitlines()
    assert lines[0] == "xychart-beta"
    assert len(lines) == 5, block
    title = re.fullmatch(r'    title "([^"\n]*)"', lines[1])
    x_axis = re.fullmatch(r'    x-axis "([^"\n]*)" \[(.*)\]', lines[2])
    y_axis = re.fullmatch(r'    y-axis "([^"\n]*)" 0 --> (\d+(?:\.\d+)?)', lines[3])
    bar = re.fullmatch(r"    bar \[(.*)\]", lines[4])
    assert title and x_axis and y_axis and bar, block
    labels = re.findall(r'"([^"]*)"', x_axis.group(2))
    # Every label is quoted, comma-separated, and nothing else is in the list.
    assert x_axis.group(2) == ", ".join(f'"{label}"' for label in labels)
    values = [float(v) for v in bar.group(1).split(", ")]
    return {
        "title": title.group(1),
        "labels": labels,
        "values": values,
        "y_top": float(y_axis.group(2)),
    }


def test_throughput_bars_add_up_to_the_burst(times: list[JobTimes]) -> None:
    chart = throughput_chart(times)
    assert chart is not None
    assert sum(chart.values) == len(times) == 40
    assert 1 < len(chart.values) <= MAX_THROUGHPUT_BARS
    assert len(chart.x_labels) == len(chart.values)
    starts = [float(label) for label in chart.x_labels]
    assert starts == sorted(starts) and starts[0] == 0
    width = float(chart.params["width"])
    first = min(t.created_at for t in times)
    # Each job counted in the bucket its end falls in.
    for t in times:
        assert t.finished_at is not None
        index = min(int((t.finished_at - first) // width), len(chart.values) - 1)
        assert chart.values[index] >= 1


def test_latency_bars_hold_every_job_in_its_range(times: list[JobTimes]) -> None:
    chart = latency_chart(times)
    assert chart is not None
    assert sum(chart.values) == 40
    assert 3 <= len(chart.values) <= MAX_LATENCY_BARS
    ranges = [tuple(map(float, label.split("-"))) for label in chart.x_labels]
    counted = [0] * len(ranges)
    for t in times:
        assert t.finished_at is not None
        took = t.finished_at - t.created_at
        (index,) = [
            i
            for i, (low, high) in enumerate(ranges)
            if low <= took < high or (i == len(ranges) - 1 and took == high)
        ]
        counted[index] += 1
    assert counted == [int(v) for v in chart.values]


def test_a_long_burst_is_bucketed_to_a_readable_chart() -> None:
    # About 10 minutes, 1,000 jobs: 30 bars of 20 s, not 600 of one second.
    times = [
        JobTimes(created_at=1000.0 + i * 0.59, finished_at=1000.0 + i * 0.59 + 2.0 + (i % 7))
        for i in range(1000)
    ]
    throughput = throughput_chart(times)
    latency = latency_chart(times)
    assert throughput is not None and latency is not None
    assert len(throughput.values) == MAX_THROUGHPUT_BARS and throughput.params["width"] == "20"
    assert sum(throughput.values) == sum(latency.values) == 1000
    assert len(latency.values) <= MAX_LATENCY_BARS


def test_jobs_that_never_finished_draw_no_chart() -> None:
    assert burst_charts([JobTimes(created_at=1.0), JobTimes(created_at=2.0, started_at=2.5)]) == []


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_mermaid_block_has_one_value_per_label(times: list[JobTimes], lang: str) -> None:
    for chart in burst_charts(times):
        parsed = parse_block(mermaid_xychart(chart, lang))
        assert parsed["labels"] == chart.x_labels
        assert parsed["values"] == chart.values
        assert isinstance(parsed["y_top"], float) and parsed["y_top"] >= max(chart.values)
    throughput = parse_block(mermaid_xychart(burst_charts(times)[0], lang))
    word = "Throughput" if lang == "en" else "Rendimiento"
    assert str(throughput["title"]).startswith(word) and "40 jobs" in str(throughput["title"])


def test_a_title_cannot_break_the_block() -> None:
    # Mermaid strings have no escape: a quote or a line break would end the statement.
    chart = Chart(
        code="CHART_LATENCY",
        params={"jobs": 'a "quoted"\nname', "width": 1, "p50": 1, "max": 2},
        x_labels=['say "hi"'],
        values=[1.0],
    )
    parsed = parse_block(mermaid_xychart(chart, "en"))
    assert "a 'quoted' name" in str(parsed["title"])
    assert parsed["labels"] == ["say 'hi'"]


@pytest.mark.parametrize(("lang", "heading"), [("en", "### Charts"), ("es", "### Gráficos")])
def test_the_report_draws_the_burst_of_its_throughput_scenario(
    times: list[JobTimes], lang: str, heading: str
) -> None:
    burst = ScenarioRecord(
        name="A burst of jobs all succeed and the throughput is measured",
        feature="Throughput",
        tags=["e2e", "throughput"],
        status=Status.PASS,
        duration_s=0.6,
        metrics={"burst_jobs": 40.0, "jobs_per_min": 5922.3},
        job_times=times,
    )
    report = build_e2e_report(e2e_run([burst], seed_like_snapshot(), seed_like_snapshot()))
    assert [c.code for c in report.charts] == ["CHART_THROUGHPUT", "CHART_LATENCY"]
    text = render_markdown(report, lang)
    assert heading in text
    blocks = re.findall(r"```mermaid\n(xychart-beta\n.*?)\n```", text, re.S)
    assert len(blocks) == 2
    for block in blocks:
        values = parse_block(block)["values"]
        assert isinstance(values, list) and sum(values) == 40


@pytest.mark.parametrize(
    ("lang", "words"), [("en", "finished in the last 5 min"), ("es", "últimos 5 min")]
)
def test_the_doctor_charts_the_latency_of_recent_jobs(
    times: list[JobTimes], lang: str, words: str
) -> None:
    report = build_diagnose_report(
        checks=[],
        snapshot=None,
        database_url=None,
        server_address=None,
        job_times=times,
        job_times_minutes=5,
    )
    assert [c.code for c in report.charts] == ["CHART_RECENT_LATENCY"]
    text = render_markdown(report, lang)
    (block,) = re.findall(r"```mermaid\n(xychart-beta\n.*?)\n```", text, re.S)
    parsed = parse_block(block)
    assert words in str(parsed["title"]) and "40 jobs" in str(parsed["title"])
    assert "jobs table (created_at, finished_at)" in text or "tabla jobs (created_at" in text
    no_jobs = build_diagnose_report(
        checks=[], snapshot=None, database_url=None, server_address=None
    )
    assert no_jobs.charts == [] and "xychart-beta" not in render_markdown(no_jobs, lang)
