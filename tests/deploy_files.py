"""Reading the shipped Prometheus and Grafana files for the tests: the alert rules, the
dashboard's queries, and the metric names a PromQL expression uses.

Shared by tests/unit/deploy (syntax, promtool) and tests/integration/deploy (every name
against the platform's real exposition).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERT_RULES = ROOT / "deploy" / "prometheus" / "hodei-alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "hodei-alerts.test.yml"
SCRAPE_EXAMPLE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "hodei.json"
OBSERVABILITY_DOC = ROOT / "docs" / "observability.md"

#: Series Prometheus makes itself for every target: not the platform's to export.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

#: Gauges every server replica reports with the same value (read from the database):
#: summing them over replicas counts the queue once per replica.
DATABASE_WIDE = {
    "hodei_queue_depth",
    "hodei_queue_oldest_wait_seconds",
    "hodei_outbox_unpublished",
    "hodei_outbox_publish_lag_seconds",
    "hodei_workers",
    "hodei_worker_slots",
    "hodei_worker_slots_busy",
}

#: Grafana's own variables, replaced by a value of the same type so that promtool can
#: parse a panel's query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LABELS = re.compile(r"\{[^{}]*\}")
_NAME = re.compile(r"(?<![\w:$])([a-zA-Z_:][\w:]*)")
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "inf", "nan",
    # aggregation operators, which may take their `by (...)` before the parenthesis
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
}  # fmt: skip


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of hodei-alerts.yml, all groups together."""
    data = yaml.safe_load(ALERT_RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


def alert_tests() -> list[dict[str, Any]]:
    return list(yaml.safe_load(ALERT_TESTS.read_text())["tests"])


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_panels() -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    panels: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_exprs() -> list[str]:
    """The PromQL of every panel target, with Grafana's variables filled in."""
    exprs = []
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if expr:
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                exprs.append(expr)
    return exprs


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not in a
    string or a label matcher, not a function call, a keyword, a grouping label list or
    a duration."""
    text = _STRING.sub('""', expr)
    text = _LABELS.sub("{}", text)
    # Label lists after by/without/on/ignoring/group_x hold label names, not metrics.
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1()", text)
    names = set()
    for match in _NAME.finditer(text):
        name = match.group(1)
        rest = text[match.end() :].lstrip()
        if name.lower() in _KEYWORDS or rest.startswith("("):
            continue
        # a duration ("5m", "1h30m") or a number's exponent is no name
        if re.fullmatch(r"\d*[smhdwy]+", name) or text[match.start() - 1 : match.start()].isdigit():
            continue
        names.add(name)
    return names


def exported_names(families: dict[str, str]) -> set[str]:
    """The series names an exposition's families ({family name: type}, as
    prometheus_client's parser gives them) let a query name: a counter's `_total`, a
    histogram's `_bucket`, `_sum` and `_count`, a gauge's own name. From the families,
    not the samples, so that a labelled family nothing has touched yet still counts."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "info": ("_info",),
    }
    return {
        f"{name}{suffix}" for name, kind in families.items() for suffix in suffixes.get(kind, ("",))
    }


def label_matchers(expr: str) -> dict[str, set[str]]:
    """{metric name: the label names its selectors match on} in `expr`."""
    text = _STRING.sub(lambda m: '""' if m.group(0).startswith("`") else m.group(0), expr)
    found: dict[str, set[str]] = {}
    for match in re.finditer(r"([a-zA-Z_:][\w:]*)\s*\{([^{}]*)\}", text):
        labels = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", match.group(2)))
        found.setdefault(match.group(1), set()).update(labels)
    return found


def recording_rules_file(exprs: list[str], path: Path) -> Path:
    """A rule file with each expression as a recording rule: `promtool check rules` on
    it checks the PromQL syntax of queries that are not rules (the dashboard's)."""
    rules = [{"record": f"hodei:dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)]
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return path


def unsafe_database_wide_reads(expr: str) -> list[str]:
    """The database-wide gauges `expr` reads from the servers other than through
    `max without(instance, ...)` (or min): each would be counted once per replica."""
    unsafe = []
    for name in sorted(metric_names(expr) & DATABASE_WIDE):
        for match in re.finditer(rf"\b{name}\{{([^}}]*)\}}", expr):
            if 'job="hodei-worker"' in match.group(1):
                continue  # a worker's own hodei_worker_slots: per process
            before = expr[: match.start()].rstrip()
            if not re.search(r"\b(max|min)\s+without\s*\(\s*instance[^)]*\)\s*\($", before):
                unsafe.append(name)
    return unsafe
