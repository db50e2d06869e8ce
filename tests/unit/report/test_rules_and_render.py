"""Rules (observations -> findings, root cause, checklist) and rendering, in both languages.
Pure data: no database, no process."""

from __future__ import annotations

import re

import pytest

from hodei.redaction import redact
from hodei.report import (
    build_diagnose_report,
    build_e2e_report,
    render_markdown,
)
from hodei.report.model import (
    LogScan,
    Report,
    Status,
)
from tests.unit.report.samples import (
    SECRET_URL,
    chk,
    e2e_run,
    lifecycle,
    seed_like_snapshot,
    stalled_checks,
)

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
    report = build_e2e_report(e2e_run([failing], None, None, scans))
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
