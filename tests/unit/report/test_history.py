"""The e2e run history (hodei/report/history.py): one line per run, the comparison of
two runs in both languages, and one-line errors for a run that is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from hodei.report.history import (
    HistoryEntry,
    HistoryError,
    append_entry,
    compare,
    comparison_lines,
    read_history,
    resolve,
)


def entry(run_id: str, problems: dict[str, str], rate: float, dispatch: float) -> HistoryEntry:
    return HistoryEntry(
        run_id=run_id,
        time="2026-12-07T02:00:00Z",
        launcher="local",
        faults=["dispatcher_off"] if problems else [],
        components={
            "Dispatcher": "FAIL" if "DISPATCHER_DISABLED" in problems else "PASS",
            "Workers": "PASS",
        },
        problems=problems,
        figures={"jobs_per_min": rate, "dispatch_ms": dispatch},
    )


def test_history_lines_round_trip_and_skip_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    append_entry(path, entry("20261207T010000Z-aaaa", {"DISPATCHER_DISABLED": "critical"}, 0, 0))
    with path.open("a") as fh:
        fh.write('{"run_id": "torn\n')
    append_entry(path, entry("20261207T020000Z-bbbb", {}, 900.0, 12.0))
    runs = read_history(path)
    assert [r.run_id for r in runs] == ["20261207T010000Z-aaaa", "20261207T020000Z-bbbb"]
    assert resolve(runs, "latest", path).run_id.endswith("bbbb")
    assert resolve(runs, "previous", path).run_id.endswith("aaaa")
    assert resolve(runs, "20261207T01", path).run_id.endswith("aaaa")


def test_unknown_runs_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    with pytest.raises(HistoryError, match="no run recorded"):
        resolve([], "latest", path)
    runs = [entry("20261207T010000Z-aaaa", {}, 1, 1), entry("20261207T010000Z-abcd", {}, 1, 1)]
    with pytest.raises(HistoryError, match="no run 'nope'") as err:
        resolve(runs, "nope", path)
    assert "\n" not in str(err.value)
    with pytest.raises(HistoryError, match="matches 2 runs"):
        resolve(runs, "20261207T010000Z-a", path)
    with pytest.raises(HistoryError, match="no previous run"):
        resolve(runs[:1], "previous", path)


@pytest.mark.parametrize(
    ("lang", "fixed", "figure", "component"),
    [
        (
            "en",
            "Fixed problems: DISPATCHER_DISABLED",
            "jobs_per_min: 400 → 900 (+500.0)",
            "Dispatcher: FAIL → PASS",
        ),
        (
            "es",
            "Problemas resueltos: DISPATCHER_DISABLED",
            "jobs_per_min: 400 → 900 (+500.0)",
            "Job Dispatcher: FAIL → PASS",
        ),
    ],
)
def test_comparison_names_new_and_fixed_problems_and_the_deltas(
    lang: str, fixed: str, figure: str, component: str
) -> None:
    before = entry("a", {"DISPATCHER_DISABLED": "critical"}, 400.0, 30.0)
    after = entry("b", {"LOW_THROUGHPUT": "minor"}, 900.0, 12.5)
    cmp = compare(before, after)
    assert cmp.new == ["LOW_THROUGHPUT"] and cmp.fixed == ["DISPATCHER_DISABLED"]
    assert cmp.figures["dispatch_ms"] == (30.0, 12.5, -17.5)
    lines = comparison_lines(cmp.model_dump(), lang)
    assert fixed in lines and figure in lines and component in lines
