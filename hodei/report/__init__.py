"""The report model (JSON is the source of truth) and its Markdown rendering.

Public API: `build_e2e_report(run)`, `build_diagnose_report(...)`,
`render_markdown(report, lang)`; `Report.model_validate_json(text)` reads a report
back. Redaction lives in
`hodei.redaction`, durations in `hodei.durations`: the platform uses them too.
"""

from hodei.report.diagnose_report import build_diagnose_report
from hodei.report.e2e_report import build_e2e_report
from hodei.report.model import Report
from hodei.report.render import render_markdown

__all__ = [
    "Report",
    "build_diagnose_report",
    "build_e2e_report",
    "render_markdown",
]
