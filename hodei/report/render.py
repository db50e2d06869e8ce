"""Markdown from a Report, through the Jinja2 templates `report.<lang>.md.j2`."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from hodei.durations import human_age
from hodei.redaction import redact_text
from hodei.report.catalogue import (
    LANGS,
    checklist_text,
    component_name,
    fill,
    finding_text,
    say,
    severity_word,
)
from hodei.report.charts import mermaid_xychart
from hodei.report.model import Finding, Report, Status, TimelineEvent

ICON = {Status.PASS: "✅", Status.WARN: "⚠️", Status.FAIL: "❌", Status.SKIP: "⏭️"}
STATE_WORD = {
    "en": {
        Status.PASS: "WORKING",
        Status.WARN: "WARNING",
        Status.FAIL: "FAILING",
        Status.SKIP: "NOT CHECKED",
    },
    "es": {
        Status.PASS: "FUNCIONANDO",
        Status.WARN: "ADVERTENCIA",
        Status.FAIL: "FALLA",
        Status.SKIP: "NO VERIFICADO",
    },
}


def _status(value: Any) -> Status:
    return value if isinstance(value, Status) else Status(str(value))


def root_cause_sentence(report: Report, lang: str) -> str:
    if report.root_cause_code:
        return fill(
            finding_text(report.root_cause_code, lang).root_cause, report.root_cause_params, lang
        )
    return report.root_cause


def actions_by_priority(
    findings: list[Finding], lang: str, commands: dict[str, list[str]] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Recommended actions of every finding, de-duplicated, grouped high/medium/low; the
    first action of a finding carries the exact commands that go with it."""
    out: dict[str, list[dict[str, Any]]] = {"high": [], "medium": [], "low": []}
    seen: set[str] = set()
    for f in findings:
        text = finding_text(f.code, lang)
        pending = list((commands or {}).get(f.code, []))
        for action in text.actions:
            priority = action.priority
            sentence = fill(action.text, f.params, lang)
            if sentence in seen:
                continue
            seen.add(sentence)
            # A minor finding's actions are never "immediate".
            p = "medium" if f.severity == "minor" and priority == "high" else priority
            out.setdefault(p, []).append(
                {
                    "action": sentence,
                    "title": fill(text.title, f.params, lang),
                    "modules": text.modules,
                    "commands": pending,
                }
            )
            pending = []
    return out


def production_impact(report: Report, lang: str) -> dict[str, str]:
    """The seed's production-impact block, from the findings: severity, who is
    affected, what is blocked, and the first thing to do."""
    critical = [f for f in report.findings if f.severity == "critical"]
    failing = [c.component for c in report.components if c.status == Status.FAIL]
    if critical:
        users = say({"code": "IMPACT_USERS_ALL"}, lang)
    elif report.findings:
        names = ", ".join(component_name(c, lang) for c in failing) or "?"
        users = say({"code": "IMPACT_USERS_SOME", "params": {"components": names}}, lang)
    else:
        users = say({"code": "IMPACT_USERS_NONE"}, lang)
    actions = actions_by_priority(report.findings, lang, report.action_commands)
    first = next((a for p in ("high", "medium", "low") for a in actions[p]), None)
    return {
        "users": users,
        "blocked": ", ".join(component_name(c, lang) for c in failing),
        "first_action": first["action"] if first else "",
        "first_command": (first["commands"][0] if first and first["commands"] else ""),
    }


def since_previous(report: Report, lang: str) -> list[str]:
    from hodei.report.history import comparison_lines

    return comparison_lines(report.since_previous, lang) if report.since_previous else []


def _participant(event: TimelineEvent) -> tuple[str, str]:
    """(from, to) of a lifecycle event in the sequence diagram."""
    t = event.event_type
    if t in ("JobCreated", "JobCancelRequested"):
        return "Client", "Server"
    if t in ("JobAssigned", "JobRequeued"):
        return "Dispatcher", "Worker"
    if t.startswith("Worker"):
        return "Worker", "Server"
    return "Worker", "Server"


def mermaid_timeline(events: list[TimelineEvent]) -> str:
    """A Mermaid sequenceDiagram of the lifecycle, one arrow per domain event."""
    if not events:
        return ""
    lines = [
        "sequenceDiagram",
        "    participant Client",
        "    participant Server",
        "    participant Dispatcher",
        "    participant Worker",
    ]
    for e in events:
        src, dst = _participant(e)
        clock = e.occurred_at[11:23] if len(e.occurred_at) >= 19 else e.occurred_at
        label = f"{clock} {e.event_type} {e.aggregate_type} {e.aggregate_id[:8]}"
        lines.append(f"    {src}->>{dst}: {label.replace(';', ',')}")
    return "\n".join(lines)


@cache
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("hodei.report", "templates"),
        autoescape=False,  # Markdown, not HTML
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["age"] = human_age
    # "3.0 s ago" / "hace 3.0 s", and a bare "n/a" when nothing was measured: never
    # "n/a ago".
    env.filters["ago"] = lambda v: "n/a" if v is None else f"{human_age(v)} ago"
    env.filters["hace"] = lambda v: "n/a" if v is None else f"hace {human_age(v)}"
    env.filters["redact"] = redact_text
    env.filters["icon"] = lambda s: ICON[_status(s)]
    return env


def render_markdown(report: Report, lang: str = "en") -> str:
    """The report in Markdown, in English (`en`) or Spanish (`es`, the seed's headings)."""
    if lang not in LANGS:
        raise ValueError(f"unsupported report language {lang!r}; use one of {', '.join(LANGS)}")
    template = _env().get_template(f"report.{lang}.md.j2")
    findings = [
        {
            "f": f,
            "t": finding_text(f.code, lang),
            "title": fill(finding_text(f.code, lang).title, f.params, lang),
            "severity": severity_word(f.severity, lang),
        }
        for f in report.findings
    ]
    text = template.render(
        r=report,
        lang=lang,
        root_cause=root_cause_sentence(report, lang),
        findings=findings,
        actions=actions_by_priority(report.findings, lang, report.action_commands),
        checklist=[(i, checklist_text(i.code, lang, i.params or None)) for i in report.checklist],
        said=lambda phrase, fallback="": say(phrase, lang, fallback),
        problem_no={f.code: i for i, f in reversed(list(enumerate(report.findings, 1)))},
        impact=production_impact(report, lang),
        since=since_previous(report, lang),
        component=lambda name: component_name(name, lang),
        word=lambda s: STATE_WORD[lang][_status(s)],
        fill=fill,
        mermaid=mermaid_timeline(report.timeline),
        charts=[mermaid_xychart(chart, lang) for chart in report.charts],
        Status=Status,
    )
    # Belt and braces: whatever a template printed, no password leaves this function.
    return redact_text(text)
