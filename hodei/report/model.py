"""The report model shared by `pytest features/` and `hodei-diagnose`.

JSON (``Report.to_json``) is the source of truth; Markdown is rendered from it by
Jinja2 templates, in English or Spanish. Texts meant for people that depend on
the language are not stored here: findings and checklist items carry a `code`
and `params`, and the templates look the words up in the catalogue.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any


class Status(enum.StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass
class StepRecord:
    """One Gherkin step (or one canary phase) as it ran."""

    name: str
    status: Status
    duration_s: float
    error: str = ""


@dataclass
class ScenarioRecord:
    name: str
    feature: str
    tags: list[str]
    status: Status
    duration_s: float
    steps: list[StepRecord] = field(default_factory=list)
    error: str = ""
    # Measured figures a scenario wants in the report, e.g. {"jobs_per_min": 812.0}.
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class CheckResult:
    """One diagnostic check (hodei-diagnose), or one harness observation."""

    id: str
    component: str
    status: Status
    title: str
    observed: str = ""
    threshold: str = ""
    duration_s: float = 0.0
    evidence: list[str] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)
    remediation: list[str] = field(default_factory=list)
    debug_commands: list[str] = field(default_factory=list)
    # Additive (report engineer): the catalogue finding a non-PASS result stands for,
    # and the values that fill the finding's sentences.
    finding: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class LogScan:
    """ERROR lines and gRPC stream errors found in one process's log."""

    source: str  # "server", "worker-1", a container name...
    path: str
    total_lines: int
    error_lines: list[str] = field(default_factory=list)
    grpc_errors: list[str] = field(default_factory=list)
    notable_lines: list[str] = field(default_factory=list)  # e.g. dispatcher cycles


@dataclass
class DatabaseSnapshot:
    taken_at: str  # ISO 8601 UTC
    jobs_total: int = 0
    jobs_by_state: dict[str, int] = field(default_factory=dict)
    oldest_pending_age_s: float | None = None
    queue_depth: int = 0
    queue_oldest_age_s: float | None = None
    queue_sample: list[dict[str, Any]] = field(default_factory=list)
    workers_by_state: dict[str, int] = field(default_factory=dict)
    workers_sample: list[dict[str, Any]] = field(default_factory=list)
    events_total: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    recent_events: list[dict[str, Any]] = field(default_factory=list)
    outbox_total: int = 0
    outbox_unpublished: int = 0
    outbox_oldest_unpublished_age_s: float | None = None
    job_logs_total: int = 0
    servers: list[dict[str, Any]] = field(default_factory=list)  # server_status rows
    schema_version: int | None = None


@dataclass
class Finding:
    """A problem the run or the checks established.

    `code` selects the words in the catalogue (title, probable causes, module to
    look at, recommended actions); `params` fills them in.
    """

    code: str
    component: str
    severity: str  # "critical" | "major" | "minor"
    params: dict[str, Any] = field(default_factory=dict)
    symptoms: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)


@dataclass
class ChecklistItem:
    code: str  # catalogue key of the item's sentence
    checked: bool
    evidence: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # additive: fills the sentence


@dataclass
class Metric:
    component: str
    status: Status
    response_time: str
    observations: str


@dataclass
class TimelineEvent:
    occurred_at: str
    event_type: str
    aggregate_type: str
    aggregate_id: str
    actor: str = ""


@dataclass
class Report:
    kind: str  # "e2e" | "diagnose"
    generated_at: str
    version: str
    target: dict[str, Any]  # launcher/mode, database (redacted), server address, pids...
    verdict: Status = Status.PASS
    root_cause: str = ""  # one sentence, e.g. "the dispatcher is stopped"
    components: list[CheckResult] = field(default_factory=list)
    scenarios: list[ScenarioRecord] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    snapshot_before: DatabaseSnapshot | None = None
    snapshot_after: DatabaseSnapshot | None = None
    log_scans: list[LogScan] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    checklist: list[ChecklistItem] = field(default_factory=list)
    timeline: list[TimelineEvent] = field(default_factory=list)
    debug_commands: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    # Additive: the root cause as a catalogue finding code + params, so that it renders
    # in either language; `root_cause` keeps the English sentence.
    root_cause_code: str = ""
    root_cause_params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str)
