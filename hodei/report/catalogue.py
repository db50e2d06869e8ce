"""The words of the reports, in English and Spanish, keyed by code.

Findings and checklist items in a Report carry only a `code` and `params`; the
templates look their title, probable causes, module to look at and recommended
actions up here, so one JSON report renders in either language.
"""

from __future__ import annotations

from typing import Any

from hodei.report.finding_texts import FINDINGS, FindingText

LANGS = ("en", "es")


CHECKLIST: dict[str, dict[str, str]] = {
    "DISPATCHER_CYCLES": {
        "en": "The dispatcher processes the queue every {interval}",
        "es": "JobDispatcher procesa la cola cada {interval}",
    },
    "JOBS_LEAVE_PENDING": {
        "en": "Jobs go from PENDING to ASSIGNED/RUNNING",
        "es": "Jobs pasan de PENDING a ASSIGNED/RUNNING",
    },
    "WORKERS_RECEIVE_JOBS": {
        "en": "Workers receive jobs",
        "es": "Workers reciben jobs correctamente",
    },
    "LOGS_REACH_CLI": {"en": "Logs reach the CLI", "es": "Logs se transmiten al CLI"},
    "JOBS_COMPLETE": {
        "en": "Jobs complete with SUCCEEDED/FAILED",
        "es": "Jobs completan con SUCCEEDED/FAILED",
    },
    "NO_GRPC_ERRORS": {"en": "No gRPC errors in the logs", "es": "No hay errores gRPC en los logs"},
    "THROUGHPUT_STABLE": {
        "en": "Throughput metrics are stable",
        "es": "Métricas de throughput son estables",
    },
    "OUTBOX_PUBLISHED": {
        "en": "Outbox events are published",
        "es": "Los eventos de la outbox se publican",
    },
}

COMPONENTS: dict[str, str] = {
    # English component name -> Spanish
    "PostgreSQL": "Base de Datos PostgreSQL",
    "gRPC server": "Servidor gRPC",
    "Workers": "Workers",
    "Job queue": "Job Queue",
    "Dispatcher": "Job Dispatcher",
    "Job execution": "Ejecución de Jobs",
    "Consistency": "Consistencia",
    "Domain events": "Sistema de Eventos (Domain Events)",
    "Outbox": "Outbox",
    "Log streaming": "Log Streaming",
    "Throughput": "Throughput",
    "Logs": "Logs de procesos",
}

SEVERITY = {
    "en": {"critical": "CRITICAL", "major": "MAJOR", "minor": "MINOR"},
    "es": {"critical": "CRÍTICO", "major": "MAYOR", "minor": "MENOR"},
}


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def fill(template: str, params: dict[str, Any]) -> str:
    """`template` formatted with `params`; a missing parameter shows as '?', never raises."""
    try:
        return template.format_map(_Lenient(params))
    except (ValueError, IndexError):
        return template


def finding_text(code: str, lang: str) -> FindingText:
    texts = FINDINGS.get(code)
    if texts is None:
        return FindingText(code, code, [], [], [])
    return texts.get(lang) or texts["en"]


def checklist_text(code: str, lang: str, params: dict[str, Any] | None = None) -> str:
    texts = CHECKLIST.get(code, {})
    return fill(texts.get(lang) or texts.get("en") or code, params or {"interval": "X s"})


def component_name(name: str, lang: str) -> str:
    return COMPONENTS.get(name, name) if lang == "es" else name
