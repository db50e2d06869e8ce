"""The report model shared by `pytest features/` and `hodei-diagnose`.

JSON is the source of truth: `report.model_dump_json(indent=2)` writes it
(reports/latest.json, `hodei-diagnose --format json`) and
`Report.model_validate_json(text)` reads it back, validated; keys a reader does not
know are ignored, so older readers keep working. Markdown is rendered from the model
by Jinja2 templates, in English or Spanish. Texts meant for people that depend on the
language are not stored here: findings and checklist items carry a `code` and
`params`, and the templates look the words up in the catalogue.

Fields are keyword-only (pydantic), and assignment after construction is not
validated: the builders fill a model in steps.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # Unknown keys are dropped (a newer writer, an older reader).
    model_config = ConfigDict(extra="ignore")


class Status(enum.StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


class Phrase(_Model):
    """A sentence for people as a catalogue code (`[phrases]` in hodei/report/texts)
    and the values that fill it, so that it renders in the report's language. Models
    that carry one keep their English text beside it for JSON readers."""

    code: str
    params: dict[str, Any] = Field(default_factory=dict)


class StepRecord(_Model):
    """One Gherkin step (or one canary phase) as it ran."""

    name: str
    status: Status
    duration_s: float
    error: str = ""
    # Additive: the error as a phrase (a wait that timed out or gave up), when known.
    error_phrase: Phrase | None = None


class JobTimes(_Model):
    """One job's times from the jobs table, in unix seconds: the charts' raw data."""

    created_at: float
    started_at: float | None = None
    finished_at: float | None = None


class ScenarioRecord(_Model):
    name: str
    feature: str
    tags: list[str]
    status: Status
    duration_s: float
    steps: list[StepRecord] = Field(default_factory=list)
    error: str = ""
    # Measured figures a scenario wants in the report, e.g. {"jobs_per_min": 812.0}.
    metrics: dict[str, float] = Field(default_factory=dict)
    # Additive: the finding code that explains this scenario's failure ("caused by
    # Problem N"): set by the harness when a wait gave up on a known root cause, and
    # by the report's rules when they attach the failure to a finding.
    caused_by: str = ""
    # Additive: the times of the jobs a burst queued (created, started, finished), read
    # from the jobs table when the burst ended; the report's charts are drawn from them.
    job_times: list[JobTimes] = Field(default_factory=list)


class CheckResult(_Model):
    """One diagnostic check (hodei-diagnose), or one harness observation."""

    id: str
    component: str
    status: Status
    title: str
    observed: str = ""
    threshold: str = ""
    duration_s: float = 0.0
    evidence: list[str] = Field(default_factory=list)
    causes: list[str] = Field(default_factory=list)
    remediation: list[str] = Field(default_factory=list)
    debug_commands: list[str] = Field(default_factory=list)
    # Additive (report engineer): the catalogue finding a non-PASS result stands for,
    # and the values that fill the finding's sentences.
    finding: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    # Additive: `observed` as a phrase (rendered per language when set).
    observed_phrase: Phrase | None = None


class LogScan(_Model):
    """ERROR lines and gRPC stream errors found in one process's log."""

    source: str  # "server", "worker-1", a container name...
    path: str
    total_lines: int
    error_lines: list[str] = Field(default_factory=list)
    grpc_errors: list[str] = Field(default_factory=list)  # HTTP/2 protocol errors
    # Additive: streams ended by their peer going away, and reconnect attempts (no finding).
    reconnect_lines: list[str] = Field(default_factory=list)
    notable_lines: list[str] = Field(default_factory=list)  # e.g. dispatcher cycles


class DatabaseSnapshot(_Model):
    taken_at: str  # ISO 8601 UTC
    jobs_total: int = 0
    jobs_by_state: dict[str, int] = Field(default_factory=dict)
    oldest_pending_age_s: float | None = None
    queue_depth: int = 0
    queue_oldest_age_s: float | None = None
    queue_sample: list[dict[str, Any]] = Field(default_factory=list)
    workers_by_state: dict[str, int] = Field(default_factory=dict)
    workers_sample: list[dict[str, Any]] = Field(default_factory=list)
    events_total: int = 0
    events_by_type: dict[str, int] = Field(default_factory=dict)
    recent_events: list[dict[str, Any]] = Field(default_factory=list)
    outbox_total: int = 0
    outbox_unpublished: int = 0
    outbox_oldest_unpublished_age_s: float | None = None
    job_logs_total: int = 0
    servers: list[dict[str, Any]] = Field(default_factory=list)  # server_status rows
    schema_version: int | None = None


class Finding(_Model):
    """A problem the run or the checks established.

    `code` selects the words in the catalogue (title, probable causes, module to
    look at, recommended actions); `params` fills them in.
    """

    code: str
    component: str
    severity: str  # "critical" | "major" | "minor"
    params: dict[str, Any] = Field(default_factory=dict)
    symptoms: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    # Additive: the same symptoms and evidence as phrases; when present the report
    # renders these (in its language) instead of the English lines above.
    symptom_phrases: list[Phrase] = Field(default_factory=list)
    evidence_phrases: list[Phrase] = Field(default_factory=list)


class ChecklistItem(_Model):
    code: str  # catalogue key of the item's sentence
    checked: bool
    evidence: str = ""
    params: dict[str, Any] = Field(default_factory=dict)  # additive: fills the sentence
    evidence_phrase: Phrase | None = None  # additive: `evidence` per language


class Metric(_Model):
    component: str
    status: Status
    response_time: str
    observations: str
    observations_phrase: Phrase | None = None  # additive: `observations` per language


class Chart(_Model):
    """A bar chart, drawn as a Mermaid `xychart-beta` block (GitHub renders it). Its
    words are catalogue phrases: `code` is the title, `<code>_X` and `<code>_Y` the
    axes, all filled with `params`."""

    code: str  # "CHART_THROUGHPUT" | "CHART_LATENCY"
    params: dict[str, Any] = Field(default_factory=dict)
    x_labels: list[str] = Field(default_factory=list)
    values: list[float] = Field(default_factory=list)


class TimelineEvent(_Model):
    occurred_at: str
    event_type: str
    aggregate_type: str
    aggregate_id: str
    actor: str = ""


class Report(_Model):
    kind: str  # "e2e" | "diagnose"
    generated_at: str
    version: str
    target: dict[str, Any]  # launcher/mode, database (redacted), server address, pids...
    verdict: Status = Status.PASS
    root_cause: str = ""  # one sentence, e.g. "the dispatcher is stopped"
    components: list[CheckResult] = Field(default_factory=list)
    scenarios: list[ScenarioRecord] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    snapshot_before: DatabaseSnapshot | None = None
    snapshot_after: DatabaseSnapshot | None = None
    log_scans: list[LogScan] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    metrics: list[Metric] = Field(default_factory=list)
    checklist: list[ChecklistItem] = Field(default_factory=list)
    timeline: list[TimelineEvent] = Field(default_factory=list)
    debug_commands: list[str] = Field(default_factory=list)
    duration_s: float = 0.0
    # Additive: the root cause as a catalogue finding code + params, so that it renders
    # in either language; `root_cause` keeps the English sentence.
    root_cause_code: str = ""
    root_cause_params: dict[str, Any] = Field(default_factory=dict)
    # Additive (e2e): the seed's per-component timing table (server start, worker
    # registration, dispatch...).
    timings: list[Metric] = Field(default_factory=list)
    # Additive: finding code -> the exact commands, against this deployment, that go
    # with its recommended actions.
    action_commands: dict[str, list[str]] = Field(default_factory=dict)
    # Additive (e2e): what became of the deployment the debug commands point at (kept,
    # and how to start it again; or gone, and what is left).
    deployment_note: Phrase | None = None
    # Additive (e2e history): this run's id and what changed since the previous run
    # (hodei.report.history.Comparison as a dict; empty for a first run).
    run_id: str = ""
    since_previous: dict[str, Any] = Field(default_factory=dict)
    # Additive (e2e): charts of the burst (throughput over time, latency distribution).
    charts: list[Chart] = Field(default_factory=list)
