"""The e2e report (hodei.report.e2e_report): what the builder makes of a run as the
harness observed it. Pure data: no database, no process."""

from __future__ import annotations

from typing import Any

import pytest

from hodei.report import build_e2e_report, render_markdown
from hodei.report.model import LogScan, Status
from tests.unit.report.samples import (
    e2e_run,
    failed_at_one_step,
    lifecycle,
    seed_like_snapshot,
    server_row,
)


def test_e2e_dispatcher_disabled_is_named_from_server_status() -> None:
    before = seed_like_snapshot(oldest_pending_age_s=None, jobs_by_state={})
    after = seed_like_snapshot(servers=[server_row(dispatcher_enabled=False)])
    run = e2e_run(
        [lifecycle(Status.FAIL, "waited 10 s for job x to leave PENDING; last PENDING")],
        before,
        after,
    )
    report = build_e2e_report(run)
    assert report.root_cause_code == "DISPATCHER_DISABLED"
    assert "the dispatcher is switched off" in report.root_cause
    ticked = {i.code: i.checked for i in report.checklist}
    assert not ticked["DISPATCHER_CYCLES"] and not ticked["JOBS_LEAVE_PENDING"]
    md = render_markdown(report, "es")
    assert "s3cr3t" not in md and "Process ID: 4242" in md


def test_e2e_stalled_dispatcher_and_grpc_errors_from_observations() -> None:
    before = seed_like_snapshot(events_by_type={}, events_total=0, outbox_total=0)
    after = seed_like_snapshot()
    scans = [
        LogScan(
            source="worker-1",
            path="/tmp/w.log",
            total_lines=100,
            grpc_errors=["ERROR: h2 protocol error: error reading a body from connection"],
        )
    ]
    run = e2e_run([lifecycle(Status.FAIL, "job stayed PENDING")], before, after, scans)
    report = build_e2e_report(run)
    codes = [f.code for f in report.findings]
    assert codes[0] == "DISPATCHER_STALLED" and "GRPC_STREAM_ERRORS" in codes
    assert report.root_cause.endswith("the dispatcher is stopped")
    ticked = {i.code: i.checked for i in report.checklist}
    assert ticked["NO_GRPC_ERRORS"] is False
    assert ticked["OUTBOX_PUBLISHED"] is True  # 98 rows published during the run


def test_e2e_healthy_run_ticks_what_it_observed() -> None:
    before = seed_like_snapshot(
        events_by_type={},
        events_total=0,
        outbox_total=0,
        jobs_by_state={},
        oldest_pending_age_s=None,
        servers=[server_row(dispatcher_cycles=10)],
    )
    after = seed_like_snapshot(
        jobs_by_state={"SUCCEEDED": 3},
        oldest_pending_age_s=None,
        servers=[server_row(dispatcher_cycles=20, last_cycle_age_s=0.4)],
    )
    after.taken_at = "2025-12-23T20:50:10+00:00"
    before.taken_at = "2025-12-23T20:50:00+00:00"
    scenarios = [lifecycle(Status.PASS, log_lines_received=2, jobs_per_min=900.0)]
    report = build_e2e_report(
        e2e_run(
            scenarios, before, after, [LogScan(source="server", path="/tmp/s.log", total_lines=10)]
        )
    )
    assert report.findings == [] and report.verdict == Status.PASS
    assert all(i.checked for i in report.checklist), report.checklist
    item = next(i for i in report.checklist if i.code == "DISPATCHER_CYCLES")
    assert item.params["interval"] == "1.0 s"  # 10 cycles in the 10 s between snapshots
    assert "- [x] JobDispatcher procesa la cola cada 1.0 s" in render_markdown(report, "es")


def test_e2e_failed_outbox_step_is_attributed_to_the_outbox() -> None:
    after = seed_like_snapshot(
        outbox_unpublished=4,
        outbox_oldest_unpublished_age_s=2.0,
        oldest_pending_age_s=None,
        servers=[server_row(outbox_relay_enabled=False, last_cycle_age_s=0.2)],
    )
    failing = failed_at_one_step(
        "lifecycle",
        3.2,
        "And every outbox row of the job is published",
        3.0,
        "timed out after 3.0s waiting for every outbox row of job x to have "
        "published_at; last seen: '0/4 published'",
    )
    report = build_e2e_report(e2e_run([failing], seed_like_snapshot(), after))
    assert [f.code for f in report.findings] == ["OUTBOX_BACKLOG"]
    assert len(report.findings[0].symptoms) == 2  # the snapshot's and the step's
    ticked = {i.code: i.checked for i in report.checklist}
    assert ticked["OUTBOX_PUBLISHED"] is False


def test_e2e_failed_log_step_is_attributed_to_log_streaming() -> None:
    failing = failed_at_one_step(
        "logs",
        5.0,
        "Then the log stream received the lines",
        5.0,
        "timed out after 5.0s waiting for log lines; last seen: 0 lines",
        metrics={"log_lines_received": 0, "log_lines_expected": 2},
    )
    report = build_e2e_report(e2e_run([failing], None, None))
    assert report.root_cause_code == "LOGS_NOT_STREAMED"
    assert report.root_cause == "the job ran but 0 of 2 log line(s) reached the subscriber"


def test_e2e_timeline_is_the_lifecycle_scenarios_job() -> None:
    def events(job: str, *types: str) -> list[dict[str, Any]]:
        return [
            {
                "event_type": t,
                "aggregate_type": "job",
                "aggregate_id": job,
                "actor": "test",
                "occurred_at": f"2025-12-23 20:45:1{i}+00",
            }
            for i, t in enumerate(types)
        ]

    lifecycle_job, burst_job = "11111111-0000-0000-0000-000000000001", "22222222-0000-0000-0000-2"
    after = seed_like_snapshot(
        recent_events=events(burst_job, "JobCreated", "JobAssigned", "JobStarted", "JobSucceeded")
    )
    run = e2e_run([lifecycle(Status.PASS)], None, after)
    full = ("JobCreated", "JobAssigned", "JobStarted", "JobSucceeded")
    run.lifecycle_events = events(lifecycle_job, *full)
    timeline = build_e2e_report(run).timeline
    assert [(e.aggregate_id, e.event_type) for e in timeline] == [(lifecycle_job, t) for t in full]
    # Without the lifecycle scenario's events there is no timeline: never the database's
    # latest events, which are the last burst job's.
    run.lifecycle_events = []
    assert build_e2e_report(run).timeline == []


@pytest.mark.parametrize("lang", ["en", "es"])
def test_an_age_never_measured_reads_n_a_not_n_a_ago(lang: str) -> None:
    after = seed_like_snapshot(queue_oldest_age_s=None)
    markdown = render_markdown(
        build_e2e_report(e2e_run([lifecycle(Status.PASS)], None, after)), lang
    )
    assert "n/a ago" not in markdown and "hace n/a" not in markdown
    assert ("Oldest entry: n/a" if lang == "en" else "Entrada más antigua: n/a") in markdown
