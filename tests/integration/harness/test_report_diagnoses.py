"""The report must diagnose: run the real harness (pytest features/ in a subprocess, on
the local launcher: embedded PostgreSQL, a real server and real workers) against a
platform with one part broken on purpose, and read the report it wrote.

The finding codes and checklist codes are the report side's (hodei/report/catalogue.py);
what is expected per fault is listed in docs/harness.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hodei.report.checklist import ITEMS
from tests.integration.harness.feature_runs import run_dirs, run_features

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def codes(report: dict[str, Any]) -> set[str]:
    return {f["code"] for f in report["findings"]}


def checklist(report: dict[str, Any]) -> dict[str, bool]:
    return {item["code"]: item["checked"] for item in report["checklist"]}


def test_healthy_run_ticks_every_seed_item(tmp_path: Path) -> None:
    report = run_features(tmp_path, "--report-lang", "es")
    ticks = checklist(report)
    assert all(ticks[item] for item in ITEMS), ticks
    assert not codes(report) & {
        "DISPATCHER_DISABLED",
        "DISPATCHER_STALLED",
        "OUTBOX_BACKLOG",
        "OUTBOX_EMPTY",
        "LOGS_NOT_STREAMED",
        "GRPC_STREAM_ERRORS",
        "NO_READY_WORKERS",
    }, report["findings"]
    names = {s["name"]: s for s in report["scenarios"]}
    burst = names["A burst of jobs all succeed and the throughput is measured"]
    assert burst["status"] == "PASS" and burst["metrics"]["jobs_per_min"] > 0
    markdown = (tmp_path / "latest.md").read_text()
    assert "Checklist de Verificación Post-Fix" in markdown
    assert "Resumen Ejecutivo" in markdown


def test_dispatcher_off_is_named_as_the_root_cause(tmp_path: Path, run_temp: Path) -> None:
    report = run_features(
        tmp_path, "-k", "PENDING", "--hodei-fault", "dispatcher_off", temp_dir=run_temp
    )
    assert report["_returncode"] != 0
    # A red run keeps its run directory (the logs) and says where it is.
    (kept,) = run_dirs(run_temp)
    assert (kept / "logs" / "server.log").exists()
    assert f"hodei e2e run directory (kept: the run failed): {kept}" in report["_stdout"]
    assert "DISPATCHER_DISABLED" in codes(report)
    assert report["root_cause_code"] == "DISPATCHER_DISABLED"
    ticks = checklist(report)
    for item in (
        "DISPATCHER_CYCLES",
        "JOBS_LEAVE_PENDING",
        "WORKERS_RECEIVE_JOBS",
        "LOGS_REACH_CLI",
        "JOBS_COMPLETE",
        "THROUGHPUT_STABLE",
    ):
        assert ticks[item] is False, (item, ticks)
    assert ticks["NO_GRPC_ERRORS"] is True, ticks


def test_outbox_relay_off_is_named(tmp_path: Path) -> None:
    report = run_features(
        tmp_path,
        "-k",
        "PENDING or SubscribeLogs or throughput",
        "--hodei-fault",
        "outbox_relay_off",
    )
    assert "OUTBOX_BACKLOG" in codes(report), report["findings"]
    assert not codes(report) & {"DISPATCHER_DISABLED", "DISPATCHER_STALLED", "LOGS_NOT_STREAMED"}
    ticks = checklist(report)
    assert ticks["OUTBOX_PUBLISHED"] is False, ticks
    # Only the outbox item: the relay being off touches nothing else.
    assert all(ticks[item] for item in ITEMS if item != "OUTBOX_PUBLISHED"), ticks


def test_worker_dropping_logs_is_named(tmp_path: Path) -> None:
    report = run_features(
        tmp_path,
        "-k",
        "PENDING or SubscribeLogs or throughput",
        "--hodei-fault",
        "worker_drop_logs",
    )
    assert "LOGS_NOT_STREAMED" in codes(report), report["findings"]
    assert report["root_cause_code"] == "LOGS_NOT_STREAMED"
    ticks = checklist(report)
    assert ticks["LOGS_REACH_CLI"] is False, ticks
    for item in ITEMS:
        if item != "LOGS_REACH_CLI":
            assert ticks[item] is True, (item, ticks)
    failed = [s["name"] for s in report["scenarios"] if s["status"] == "FAIL"]
    assert failed == ["SubscribeLogs streams the exact lines and ends with the job"], failed


def test_xdist_run_gives_one_merged_report(tmp_path: Path, run_temp: Path) -> None:
    report = run_features(
        tmp_path,
        "-n",
        "2",
        "-k",
        "layer or PENDING or SubscribeLogs or throughput",
        temp_dir=run_temp,
    )
    assert report["_returncode"] == 0, report["_stdout"][-1500:]
    # A green run leaves no run directory (nor records) behind.
    assert run_dirs(run_temp) == []
    assert (
        "run directory (removed after the green run; --keep-run-dir keeps it)"
        in (report["_stdout"])
    )
    names = sorted(s["name"] for s in report["scenarios"])
    assert names == sorted(
        [
            "Every layer of the platform answers",
            "A job runs from PENDING to SUCCEEDED",
            "SubscribeLogs streams the exact lines and ends with the job",
            "A burst of jobs all succeed and the throughput is measured",
        ]
    ), names
    assert len(list(tmp_path.glob("e2e-report-*.md"))) == 1
    assert all(
        s["steps"] and all(st["status"] == "PASS" for st in s["steps"]) for s in report["scenarios"]
    )


def test_keep_run_dir_keeps_a_green_runs_directory(tmp_path: Path, run_temp: Path) -> None:
    report = run_features(tmp_path, "-k", "layer", "--keep-run-dir", temp_dir=run_temp)
    assert report["_returncode"] == 0, report["_stdout"][-1500:]
    (kept,) = run_dirs(run_temp)
    assert (kept / "logs" / "server.log").exists()
    assert f"hodei e2e run directory (kept: --keep-run-dir): {kept}" in report["_stdout"]
