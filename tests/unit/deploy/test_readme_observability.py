"""The README's "Observability" section stays in step with what ships: its metric table
names every family the server and the worker declare (and nothing else), and its alert
table every rule of hodei-alerts.yml (so do docs/observability.md's)."""

from __future__ import annotations

import re

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hodei.metrics.families import ServerMetrics, WorkerMetrics
from tests.deploy_files import OBSERVABILITY_DOC, ROOT, alert_rules, exported_names


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _readme_section() -> str:
    return _section((ROOT / "README.md").read_text(), "Observability")


def _declared_series() -> set[str]:
    """Every series name the server and worker registries expose (counters as _total,
    histograms as their family name, which is how the table names them)."""
    names: set[str] = set()
    for metrics in (ServerMetrics(), WorkerMetrics()):
        text = generate_latest(metrics.registry).decode()
        for family in text_string_to_metric_families(text):
            names |= (
                {family.name}
                if family.type == "histogram"
                else exported_names({family.name: family.type})
            )
    return names


def _table_names(section: str, prefix: str) -> set[str]:
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    first_cells = [row.split("|")[1] for row in rows]
    return {n for cell in first_cells for n in re.findall(rf"`({prefix}\w*)", cell)}


def test_the_metric_table_lists_every_declared_metric_and_no_other() -> None:
    declared = _declared_series()
    assert _table_names(_readme_section(), "hodei_") == {
        n for n in declared if n.startswith("hodei_")
    }
    # The client library's process_* families are named together, after the table.
    process = {n for n in declared if not n.startswith("hodei_")}
    assert process and all(n.startswith("process_") for n in process), process
    assert "`process_start_time_seconds`" in _readme_section()


def test_the_alert_tables_list_every_rule_and_no_other() -> None:
    shipped = {rule["alert"] for rule in alert_rules()}
    assert _table_names(_readme_section(), "Hodei") == shipped
    doc = _section(OBSERVABILITY_DOC.read_text(), "Prometheus and alerts")
    assert _table_names(doc, "Hodei") == shipped
