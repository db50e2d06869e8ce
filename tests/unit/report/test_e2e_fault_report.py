"""The e2e report of a fault run (issue 14, item 8): failed scenarios attached to the
diagnosed root cause, every component working or failing, Spanish throughout, the
seed's timing table, production impact and commands inside the actions. Pure data."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hodei.report import build_e2e_report, render_markdown
from hodei.report.e2e_components import E2E_COMPONENTS
from hodei.report.model import Phrase, Report, ScenarioRecord, Status, StepRecord
from tests.unit.report.samples import e2e_run, seed_like_snapshot, server_row

CAUSE = "DISPATCHER_DISABLED"


def blocked(
    name: str, tag: str, step: str = "Then the job reaches state SUCCEEDED"
) -> ScenarioRecord:
    """A scenario whose wait gave up because the run already knew the root cause."""
    what = {"code": "WAIT_JOB_STATE", "params": {"job": "4b434706", "state": "SUCCEEDED"}}
    said = Phrase(
        code="WAIT_GAVE_UP",
        params={
            "waited": "1.0",
            "what": what,
            "cause": CAUSE,
            "sentence": {"code": f"finding:{CAUSE}", "params": {"servers": 1, "pending": 3}},
        },
    )
    error = (
        f"BlockedByRootCause: stopped waiting after 1.0s for job 4b434706 to reach SUCCEEDED: "
        f"the run already diagnosed {CAUSE}: 1 live server(s) with dispatcher_enabled = false"
    )
    return ScenarioRecord(
        name=name,
        feature=f"{tag}.feature",
        tags=["e2e", tag],
        status=Status.FAIL,
        duration_s=1.1,
        steps=[
            StepRecord(name="When I queue a job", status=Status.PASS, duration_s=0.01),
            StepRecord(
                name=step, status=Status.FAIL, duration_s=1.0, error=error, error_phrase=said
            ),
        ],
        error=error,
        caused_by=CAUSE,
    )


def passed(name: str, tag: str, **metrics: float) -> ScenarioRecord:
    return ScenarioRecord(
        name=name,
        feature=f"{tag}.feature",
        tags=["e2e", tag],
        status=Status.PASS,
        duration_s=0.2,
        steps=[StepRecord(name="Then it works", status=Status.PASS, duration_s=0.2)],
        metrics=dict(metrics),
    )


def dispatcher_off_report() -> Report:
    before = seed_like_snapshot(events_by_type={}, events_total=0, outbox_total=0)
    after = seed_like_snapshot(
        servers=[server_row(dispatcher_enabled=False)],
        workers_by_state={"READY": 2},
        events_by_type={"JobCreated": 46},
        events_total=46,
        outbox_total=46,
    )
    scenarios = [
        passed("Every layer answers", "health", db_roundtrip_ms=4.0, grpc_health_ms=2.0),
        passed("Workers heartbeat", "workers"),
        blocked("A job runs", "lifecycle"),
        blocked("hodei job run prints", "logs", "When I run it with the hodei CLI"),
        blocked("A failing command", "failure"),
        passed("Idle streams", "keepalive"),
        blocked("A burst", "throughput"),
    ]
    run = e2e_run(scenarios, before, after)
    run.timings = {"server_start_s": 0.64, "workers_ready_s": 0.69, "workers": 2.0}
    run.lifecycle_events = [
        {
            "event_type": "JobCreated",
            "aggregate_type": "job",
            "aggregate_id": "4b434706-0000-0000-0000-000000000001",
            "actor": "client",
            "occurred_at": "2025-12-23 20:45:13+00",
        }
    ]
    return build_e2e_report(run)


def test_failed_scenarios_are_attached_to_the_root_cause() -> None:
    report = dispatcher_off_report()
    assert report.root_cause_code == CAUSE and report.findings[0].code == CAUSE
    failed = [s for s in report.scenarios if s.status == Status.FAIL]
    assert {s.caused_by for s in failed} == {CAUSE}
    # No "a scenario failed, see the step's error" finding beside the cause.
    assert "SCENARIO_FAILED" not in {f.code for f in report.findings}
    for lang, words in (("en", "caused by Problem 1"), ("es", "causado por el Problema 1")):
        md = render_markdown(report, lang)
        assert md.count(f"— {words}") == len(failed), lang


def test_every_component_is_working_or_failing() -> None:
    report = dispatcher_off_report()
    status = {c.component: c.status for c in report.components}
    assert set(E2E_COMPONENTS) <= set(status), status
    assert Status.SKIP not in {status[c] for c in E2E_COMPONENTS}, status
    assert status["Workers"] == Status.PASS and status["Job queue"] == Status.PASS
    for failing in ("Dispatcher", "Job execution", "Log streaming", "Throughput"):
        assert status[failing] == Status.FAIL, (failing, status)
    md = render_markdown(report, "en")
    summary = md.split("## 🔍")[0]
    for name in ("Workers", "Job queue", "Log streaming", "Throughput"):
        assert f"**{name}** -" in summary, name


#: Sentences the English catalogue and rules produce: none may reach the Spanish report.
ENGLISH = [
    "live server(s)",
    "stopped waiting",
    "timed out after",
    "failed at",
    "worker(s) READY or BUSY",
    "job(s) queued",
    "outbox row(s) published",
    "caused by Problem",
    "gRPC error line(s)",
    "JobAssigned event(s)",
    "Every user who submits",
    "process started to",
]


def test_the_spanish_report_is_spanish_throughout() -> None:
    md = render_markdown(dispatcher_off_report(), "es")
    leaked = [s for s in ENGLISH if s in md]
    assert leaked == [], leaked
    assert "se dejó de esperar tras 1.0 s que el job 4b434706 llegue a SUCCEEDED" in md
    assert "1 servidor(es) activo(s) con dispatcher_enabled = false" in md
    # The English report says the same things in English.
    en = render_markdown(dispatcher_off_report(), "en")
    assert "stopped waiting after 1.0s for job 4b434706 to reach SUCCEEDED" in en


@pytest.mark.parametrize(
    ("lang", "heading", "server_start"),
    [
        ("en", "Per-Component Timing", "Server start"),
        ("es", "Tiempos por Componente", "Arranque del servidor"),
    ],
)
def test_the_seed_timing_table(lang: str, heading: str, server_start: str) -> None:
    report = dispatcher_off_report()
    rows = {m.component: m for m in report.timings}
    assert rows["Server start"].response_time == "640 ms"
    assert rows["Worker registration"].response_time == "690 ms"
    assert rows["Job dispatch"].status == Status.FAIL
    assert rows["Job dispatch"].response_time == "N/A"
    md = render_markdown(report, lang)
    assert f"### {heading}" in md
    assert re.search(rf"\| {server_start} \| ✅ PASS \| 640 ms \|", md), md


@pytest.mark.parametrize(
    ("lang", "users", "first"),
    [
        ("en", "**AFFECTED USERS**: Every user who submits jobs", "**FIRST ACTION**"),
        ("es", "**USUARIOS AFECTADOS**: Todos los usuarios que crean jobs", "**PRIMERA ACCIÓN**"),
    ],
)
def test_production_impact_and_commands_inside_the_actions(
    lang: str, users: str, first: str
) -> None:
    report = dispatcher_off_report()
    md = render_markdown(report, lang)
    assert users in md and first in md
    commands = report.action_commands[CAUSE]
    assert any(c.startswith("psql ") and "server_status" in c for c in commands), commands
    assert any(c.startswith("hodei-diagnose --server 127.0.0.1:50999") for c in commands)
    actions = md.split("## 🔧")[1].split("## 📝")[0]
    assert "```bash" in actions and commands[0] in actions
    assert "s3cr3t" not in md


def test_the_timeline_is_the_lifecycle_job_only() -> None:
    report = dispatcher_off_report()
    assert {e.aggregate_id for e in report.timeline} == {"4b434706-0000-0000-0000-000000000001"}


@pytest.mark.parametrize(
    ("code", "params", "en", "es"),
    [
        (
            "DEPLOY_GONE",
            {"run_dir": "/tmp/r"},
            "The deployment is gone",
            "El despliegue ya no existe",
        ),
        (
            "DEPLOY_KEPT_EMBEDDED",
            {"run_dir": "/tmp/r", "command": "hodei e2e --reopen /tmp/r", "stop": "x --stop"},
            "start the database again with `hodei e2e --reopen /tmp/r`",
            "arrancar de nuevo la base de datos con `hodei e2e --reopen /tmp/r`",
        ),
    ],
)
def test_the_debug_commands_say_what_became_of_the_deployment(
    code: str, params: dict[str, Any], en: str, es: str
) -> None:
    report = dispatcher_off_report()
    report.deployment_note = Phrase(code=code, params=params)
    assert en in render_markdown(report, "en")
    assert es in render_markdown(report, "es")


def test_a_failed_check_of_a_step_is_said_in_spanish() -> None:
    """A step's own check (harness.expect) carries its phrase: the Spanish report says it."""
    from harness.expect import Mismatch

    error = Mismatch("CHK_EXIT_CODE", "exit code {got}, expected {code}", got=1, code=3)
    assert str(error) == "exit code 1, expected 3"
    step = StepRecord(
        name="And the job's exit code is 3",
        status=Status.FAIL,
        duration_s=0.0,
        error=f"Mismatch: {error}",
        error_phrase=Phrase.model_validate(error.phrase()),
    )
    scenario = ScenarioRecord(
        name="A failing command",
        feature="failures.feature",
        tags=["e2e", "failure"],
        status=Status.FAIL,
        duration_s=0.5,
        steps=[step],
        error=step.error,
    )
    report = build_e2e_report(e2e_run([scenario], None, seed_like_snapshot()))
    md = render_markdown(report, "es")
    assert "código de salida 1, se esperaba 3" in md
    assert "exit code 1, expected 3" not in md


def test_a_password_in_a_step_phrase_never_reaches_the_report() -> None:
    from tests.unit.report.samples import SECRET_URL

    said = Phrase(
        code="WAIT_TIMEOUT",
        params={
            "waited": "3.0",
            "what": {"code": "TEXT", "params": {"text": "x"}},
            "last": SECRET_URL,
        },
    )
    step = StepRecord(
        name="Then it connects", status=Status.FAIL, duration_s=3.0, error="x", error_phrase=said
    )
    scenario = ScenarioRecord(
        name="connects",
        feature="f.feature",
        tags=["e2e"],
        status=Status.FAIL,
        duration_s=3.0,
        steps=[step],
        error="x",
    )
    report = build_e2e_report(e2e_run([scenario], None, seed_like_snapshot()))
    assert "s3cr3t" not in report.model_dump_json()
    for lang in ("en", "es"):
        assert "s3cr3t" not in render_markdown(report, lang)
