"""Rules (observations -> findings, root cause, checklist) and rendering, in both languages.
Pure data: no database, no process."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from hodei.redaction import redact
from hodei.report import (
    build_diagnose_report,
    build_e2e_report,
    render_markdown,
)
from hodei.report.model import (
    CheckResult,
    DatabaseSnapshot,
    LogScan,
    Report,
    ScenarioRecord,
    Status,
    StepRecord,
)

SECRET_URL = "postgresql://hodei:s3cr3t-pw@db.example:5432/hodei_jobs"
SEED_HEADINGS = [
    "Resumen Ejecutivo",
    "Detalles de la Prueba",
    "Problemas Críticos Identificados",
    "Métricas de la Prueba",
    "Acciones Recomendadas",
    "Comandos para Debug",
    "Conclusiones",
    "Checklist de Verificación Post-Fix",
]
EN_HEADINGS = [
    "Executive Summary",
    "Test Details",
    "Critical Problems Identified",
    "Test Metrics",
    "Recommended Actions",
    "Debug Commands",
    "Conclusions",
    "Post-Fix Verification Checklist",
]


def server_row(**kw: Any) -> dict[str, Any]:
    row = {
        "server_id": "srv-1",
        "version": "0.1.0",
        "started_at": "2025-12-23 20:40:00+00",
        "dispatcher_enabled": True,
        "outbox_relay_enabled": True,
        "dispatcher_cycles": 300,
        "dispatched_total": 2,
        "stopped_at": None,
        "heartbeat_age_s": 0.5,
        "last_cycle_age_s": 300.0,
        "last_dispatch_age_s": 320.0,
        "last_publish_age_s": 1.0,
    }
    row.update(kw)
    return row


def seed_like_snapshot(**kw: Any) -> DatabaseSnapshot:
    """The seed's situation: 1 job PENDING for 5 min, 1 READY worker, no cycle for 5 min."""
    snap = DatabaseSnapshot(
        taken_at="2025-12-23T20:50:00+00:00",
        jobs_total=12,
        jobs_by_state={"PENDING": 1, "SUCCEEDED": 2},
        oldest_pending_age_s=300.0,
        queue_depth=1,
        queue_oldest_age_s=300.0,
        queue_sample=[
            {
                "job_id": "26e120ad-6b4b-4f6b-af7e-b02273abb646",
                "state": "PENDING",
                "enqueued_at": "2025-12-23 20:45:13+00",
                "age_s": 300.0,
            }
        ],
        workers_by_state={"READY": 1, "CREATING": 1},
        workers_sample=[
            {
                "id": "ad518c8f-3c7f-44d7-bf42-e79e88cb7630",
                "name": "w1",
                "state": "READY",
                "pid": 211908,
                "server_id": "srv-1",
                "current_job_id": None,
                "running_jobs": 0,
                "heartbeat_age_s": 2.0,
            }
        ],
        events_total=98,
        events_by_type={"JobCreated": 12, "JobAssigned": 2, "JobStarted": 2, "JobSucceeded": 2},
        recent_events=[
            {
                "event_type": "JobCreated",
                "aggregate_type": "job",
                "aggregate_id": "26e120ad-6b4b-4f6b-af7e-b02273abb646",
                "actor": "cli",
                "occurred_at": "2025-12-23 20:45:13.819185+00",
            }
        ],
        outbox_total=98,
        outbox_unpublished=0,
        job_logs_total=4,
        servers=[server_row()],
        schema_version=1,
    )
    for k, v in kw.items():
        setattr(snap, k, v)
    return snap


def chk(
    cid: str,
    component: str,
    status: Status,
    finding: str = "",
    params: dict[str, Any] | None = None,
    observed: str = "",
) -> CheckResult:
    return CheckResult(
        id=cid,
        component=component,
        status=status,
        title=cid,
        observed=observed or status.value,
        finding=finding,
        params=params or {},
    )


def stalled_checks() -> list[CheckResult]:
    return [
        chk("database.connect", "PostgreSQL", Status.PASS, observed="connect 3 ms"),
        chk("server.health", "gRPC server", Status.PASS, observed="SERVING"),
        chk("workers.ready", "Workers", Status.PASS, observed="1 READY"),
        chk(
            "queue.backlog",
            "Job queue",
            Status.WARN,
            "LOW_THROUGHPUT",
            {"rate": "0.0", "pending": 2},
        ),
        chk(
            "dispatcher.progress",
            "Dispatcher",
            Status.FAIL,
            "DISPATCHER_STALLED",
            {"pending": 2, "pending_age": "5 min", "ready": 1, "cycle_age": "5 min"},
            observed="dispatcher not processing the queue",
        ),
        chk("throughput.recent", "Throughput", Status.PASS),
        chk("logs.grpc_errors", "Logs", Status.PASS),
    ]


def test_dispatcher_root_cause_sentence_correlates_the_observations() -> None:
    report = build_diagnose_report(
        checks=stalled_checks(),
        snapshot=seed_like_snapshot(),
        database_url=SECRET_URL,
        server_address="127.0.0.1:50051",
    )
    assert report.root_cause == (
        "2 job(s) PENDING for 5 min, 1 READY worker(s), no dispatcher "
        "cycle for 5 min: the dispatcher is stopped"
    )
    assert report.verdict == Status.FAIL
    assert [f.code for f in report.findings] == ["DISPATCHER_STALLED", "LOW_THROUGHPUT"]
    assert report.findings[0].severity == "critical"
    ticked = {i.code: i.checked for i in report.checklist}
    assert ticked["DISPATCHER_CYCLES"] is False
    assert ticked["JOBS_LEAVE_PENDING"] is False
    assert ticked["NO_GRPC_ERRORS"] is True
    assert ticked["LOGS_REACH_CLI"] is False  # no canary: not observed, so not ticked


def test_cause_beats_symptom_in_root_cause() -> None:
    checks = [
        chk("workers.ready", "Workers", Status.FAIL, "NO_READY_WORKERS", {"server": "x"}),
        chk(
            "workers.heartbeat",
            "Workers",
            Status.FAIL,
            "WORKER_HEARTBEAT_STALE",
            {"count": 1, "age": "3 s", "ids": "abc"},
        ),
    ]
    report = build_diagnose_report(
        checks=checks, snapshot=None, database_url=None, server_address=None
    )
    assert report.root_cause_code == "WORKER_HEARTBEAT_STALE"


@pytest.mark.parametrize("lang,headings", [("es", SEED_HEADINGS), ("en", EN_HEADINGS)])
def test_report_renders_every_section_in_both_languages(lang: str, headings: list[str]) -> None:
    report = build_diagnose_report(
        checks=stalled_checks(),
        snapshot=seed_like_snapshot(),
        database_url=SECRET_URL,
        server_address="127.0.0.1:50051",
    )
    md = render_markdown(report, lang)
    positions = [
        md.find(f"## {icon} {h}")
        for icon, h in zip(["📋", "🔍", "🚨", "📊", "🔧", "📝", "🎯", "📋"], headings, strict=True)
    ]
    assert all(p >= 0 for p in positions), (lang, positions)
    assert positions == sorted(positions)  # in the seed's order
    assert "s3cr3t-pw" not in md and "hodei:***@db.example" in md
    assert "```mermaid\nsequenceDiagram" in md
    assert "- [ ] " in md and "- [x] " in md
    assert re.search(r"\| .*Dispatcher \| ❌ FAIL \|", md)
    assert "hodei/server/dispatcher.py" in md
    sentence = {"es": "el dispatcher está detenido", "en": "the dispatcher is stopped"}[lang]
    assert sentence in md
    # The seed's debug queries, pointed at this deployment.
    assert (
        "SELECT id, state, attempts, created_at FROM jobs ORDER BY created_at DESC LIMIT 5;"
    ) in md
    assert "hodei job list --server 127.0.0.1:50051" in md


def test_spanish_checklist_uses_the_seed_sentences() -> None:
    report = build_diagnose_report(
        checks=stalled_checks(),
        snapshot=seed_like_snapshot(),
        database_url=None,
        server_address=None,
    )
    md = render_markdown(report, "es")
    for line in (
        "Jobs pasan de PENDING a ASSIGNED/RUNNING",
        "Workers reciben jobs correctamente",
        "Logs se transmiten al CLI",
        "No hay errores gRPC en los logs",
        "Métricas de throughput son estables",
    ):
        assert line in md


def test_unknown_language_is_a_clear_error() -> None:
    report = build_diagnose_report(checks=[], snapshot=None, database_url=None, server_address=None)
    with pytest.raises(ValueError, match="unsupported report language 'fr'"):
        render_markdown(report, "fr")


def test_json_round_trip_renders_identically() -> None:
    report = build_diagnose_report(
        checks=stalled_checks(),
        snapshot=seed_like_snapshot(),
        database_url=SECRET_URL,
        server_address="127.0.0.1:50051",
    )
    again = Report.model_validate_json(report.model_dump_json(indent=2))
    assert again.model_dump_json(indent=2) == report.model_dump_json(indent=2)
    assert again == report
    assert render_markdown(again, "es") == render_markdown(report, "es")
    assert "s3cr3t" not in report.model_dump_json()


def _run(
    scenarios: list[ScenarioRecord],
    before: DatabaseSnapshot | None,
    after: DatabaseSnapshot | None,
    scans: list[LogScan] | None = None,
) -> Any:
    dep = SimpleNamespace(
        mode="local",
        database_url=SECRET_URL,
        server_address="127.0.0.1:50999",
        processes=[
            SimpleNamespace(role="server", name="server", pid=4242, log_path="/tmp/server.log")
        ],
    )
    return SimpleNamespace(
        launcher="local",
        deployment=dep,
        started_at="",
        finished_at="",
        duration_s=12.5,
        scenarios=scenarios,
        log_scans=scans or [],
        snapshot_before=before,
        snapshot_after=after,
        faults=[],
        server_info={"version": "0.1.0"},
        workers=[],
        launch_error="",
        errors=[],
        log_dir="",
    )


def lifecycle(status: Status, error: str = "", **metrics: float) -> ScenarioRecord:
    steps = [
        StepRecord(name="a job is queued", status=Status.PASS, duration_s=0.01),
        StepRecord(name="the job reaches RUNNING", status=status, duration_s=10.0, error=error),
    ]
    return ScenarioRecord(
        name="job lifecycle",
        feature="lifecycle.feature",
        tags=["lifecycle"],
        status=status,
        duration_s=10.1,
        steps=steps,
        error=error,
        metrics=dict(metrics),
    )


def failed_at_one_step(
    name: str,
    duration_s: float,
    step: str,
    step_s: float,
    error: str,
    metrics: dict[str, float] | None = None,
) -> ScenarioRecord:
    """Scenario `name` (in `name`.feature) that failed at its only step."""
    return ScenarioRecord(
        name=name,
        feature=f"{name}.feature",
        tags=[],
        status=Status.FAIL,
        duration_s=duration_s,
        steps=[StepRecord(name=step, status=Status.FAIL, duration_s=step_s, error=error)],
        metrics=metrics or {},
    )


def test_e2e_dispatcher_disabled_is_named_from_server_status() -> None:
    before = seed_like_snapshot(oldest_pending_age_s=None, jobs_by_state={})
    after = seed_like_snapshot(servers=[server_row(dispatcher_enabled=False)])
    run = _run(
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
    run = _run([lifecycle(Status.FAIL, "job stayed PENDING")], before, after, scans)
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
        _run(
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
    report = build_e2e_report(_run([failing], seed_like_snapshot(), after))
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
    report = build_e2e_report(_run([failing], None, None))
    assert report.root_cause_code == "LOGS_NOT_STREAMED"
    assert report.root_cause == "the job ran but 0 of 2 log line(s) reached the subscriber"


def test_passwords_quoted_in_logs_and_errors_never_reach_the_json() -> None:
    scans = [
        LogScan(
            source="server",
            path="/tmp/s.log",
            total_lines=3,
            error_lines=[f"ERROR cannot connect to {SECRET_URL}"],
            grpc_errors=[f"UNAVAILABLE while talking to {SECRET_URL}"],
        )
    ]
    failing = lifecycle(Status.FAIL, f"boom: {SECRET_URL}")
    report = build_e2e_report(_run([failing], None, None, scans))
    diag = build_diagnose_report(
        checks=[
            chk(
                "database.connect",
                "PostgreSQL",
                Status.FAIL,
                "DATABASE_UNREACHABLE",
                {"database": redact(SECRET_URL), "error": "x"},
                observed=f"cannot connect to {SECRET_URL}",
            )
        ],
        snapshot=None,
        database_url=SECRET_URL,
        server_address=None,
        log_scans=scans,
    )
    for r in (report, diag):
        assert "s3cr3t-pw" not in r.model_dump_json()
        assert "s3cr3t-pw" not in render_markdown(r, "en")


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
    run = _run([lifecycle(Status.PASS)], None, after)
    full = ("JobCreated", "JobAssigned", "JobStarted", "JobSucceeded")
    run.lifecycle_events = events(lifecycle_job, *full)
    timeline = build_e2e_report(run).timeline
    assert [(e.aggregate_id, e.event_type) for e in timeline] == [(lifecycle_job, t) for t in full]
    # Without the lifecycle scenario's events, the database's latest ones still give one.
    run.lifecycle_events = []
    assert {e.aggregate_id for e in build_e2e_report(run).timeline} == {burst_job}


@pytest.mark.parametrize("lang", ["en", "es"])
def test_an_age_never_measured_reads_n_a_not_n_a_ago(lang: str) -> None:
    after = seed_like_snapshot(queue_oldest_age_s=None)
    markdown = render_markdown(build_e2e_report(_run([lifecycle(Status.PASS)], None, after)), lang)
    assert "n/a ago" not in markdown and "hace n/a" not in markdown
    assert ("Oldest entry: n/a" if lang == "en" else "Entrada más antigua: n/a") in markdown
