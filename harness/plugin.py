"""pytest plugin of the e2e harness (loaded from the root conftest.py).

- Starts the platform once per run when `features/` is collected (the xdist
  controller does it and hands the deployment to its workers), takes the
  database snapshot before, and at the end the snapshot after, the log scans,
  and the report: reports/e2e-report-<UTC>.md, latest.md, latest.json.
- Records every scenario with per-step timings and errors from the pytest-bdd
  hooks; each pytest process appends its scenarios to its own JSONL file, the
  controller merges them (cucumberjson is empty under xdist in pytest-bdd 9.0.1).
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.context import OWN_PLATFORM_MODES, E2EContext, RunInfo
from harness.launchers.base import LAUNCHERS, Launcher, LauncherConfig
from harness.launchers.local import FAULTS
from harness.launchers.select import make_launcher
from harness.run import (
    E2ERun,
    append_record,
    read_job_ids,
    read_records,
    utc_now,
    write_report,
)
from hodei.diagnose.evidence import scan_file
from hodei.report.model import ScenarioRecord, Status, StepRecord

#: Gherkin tags used in features/ (pytest-bdd turns them into markers; --strict-markers).
TAGS = {
    "e2e": "end-to-end scenario run against a Hodei deployment",
    "health": "platform health: database, migrations, gRPC health, port",
    "workers": "worker registration and heartbeats",
    "lifecycle": "job lifecycle PENDING -> SUCCEEDED, queue, events, outbox",
    "logs": "log streaming to the CLI and SubscribeLogs",
    "failure": "failing job",
    "job_timeout": "job timeout (not `timeout`: that is pytest-timeout's marker)",
    "cancel": "job cancellation",
    "recovery": "worker killed mid-job",
    "kills_processes": "needs to kill platform processes (local launcher only)",
    "keepalive": "idle stream, no gRPC errors",
    "throughput": "burst of jobs, throughput measured",
}

RECORD = pytest.StashKey[dict[str, Any]]()
STATE = pytest.StashKey["RunState"]()


@dataclass
class RunState:
    active: bool = False
    is_xdist_worker: bool = False
    launcher: Launcher | None = None
    info: RunInfo | None = None
    launch_error: str = ""
    #: The launcher cannot run here at all (e.g. no Docker engine): the scenarios are
    #: skipped with launch_error as the reason, never passed.
    launch_skipped: bool = False
    #: Where every pytest process appends its scenario records (JSONL), whether or not
    #: the platform started.
    records_dir: Path | None = None
    started: float = 0.0
    started_at: str = ""
    snapshot_before: Any = None
    errors: list[str] = field(default_factory=list)
    context: E2EContext | None = None
    report_path: Path | None = None
    notes: list[str] = field(default_factory=list)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hodei-e2e", "Hodei end-to-end harness")
    group.addoption(
        "--launcher",
        choices=LAUNCHERS,
        default=None,
        help="how to get a platform: local (default), live, containers [env HODEI_E2E_LAUNCHER]",
    )
    group.addoption(
        "--database-url",
        default=None,
        help="live: the deployment's database; local: a PostgreSQL server to "
        "create the run's database on [env HODEI_E2E_DATABASE_URL]",
    )
    group.addoption(
        "--server",
        default=None,
        help="live: the deployment's server HOST:PORT [env HODEI_E2E_SERVER]",
    )
    group.addoption("--e2e-workers", type=int, default=2, help="local: workers to start")
    group.addoption("--e2e-slots", type=int, default=4, help="local: slots per worker")
    group.addoption(
        "--hodei-fault",
        action="append",
        default=[],
        choices=sorted(FAULTS),
        help="local: break one part of the platform on purpose (repeatable)",
    )
    group.addoption("--report-lang", choices=("en", "es"), default="en")
    group.addoption("--report-dir", default=None, help="default: <rootdir>/reports")


def _targets_features(config: pytest.Config) -> bool:
    features = (config.rootpath / "features").resolve()
    for arg in config.args:
        path = Path(arg.split("::")[0])
        path = path if path.is_absolute() else Path(config.invocation_params.dir) / path
        path = path.resolve()
        if path == features or features in path.parents or path in features.parents:
            return True
    return False


def _env_or(value: str | None, var: str) -> str | None:
    # The plugin is an entry point: it may read the environment.
    return value if value else os.environ.get(var) or None


def _launcher_config(config: pytest.Config) -> LauncherConfig:
    name = _env_or(config.getoption("--launcher"), "HODEI_E2E_LAUNCHER") or "local"
    db = _env_or(config.getoption("--database-url"), "HODEI_E2E_DATABASE_URL")
    if name == "local" and db is None:
        db = os.environ.get("HODEI_DATABASE_URL") or None
    return LauncherConfig(
        name=name,
        database_url=db,
        server=_env_or(config.getoption("--server"), "HODEI_E2E_SERVER"),
        workers=config.getoption("--e2e-workers"),
        slots=config.getoption("--e2e-slots"),
        faults=frozenset(config.getoption("--hodei-fault")),
    )


def _snapshot(url: str) -> tuple[Any, str]:
    try:
        from hodei.diagnose.probes import take_snapshot
    except ImportError:
        return None, "hodei.diagnose.probes.take_snapshot is not available: no database snapshot"
    try:
        return take_snapshot(url), ""
    except Exception as exc:
        return None, f"database snapshot failed: {type(exc).__name__}: {exc}"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for tag, text in TAGS.items():
        config.addinivalue_line("markers", f"{tag}: {text}")
    state = RunState()
    config.stash[STATE] = state
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        state.is_xdist_worker = True
        if "hodei_e2e_records" in workerinput:
            state.records_dir = Path(workerinput["hodei_e2e_records"])
        if "hodei_e2e" in workerinput:
            state.active = True
            state.info = RunInfo.from_json(workerinput["hodei_e2e"])
            state.launch_error = workerinput.get("hodei_e2e_error", "")
            state.launch_skipped = bool(workerinput.get("hodei_e2e_skip", False))
        elif "hodei_e2e_error" in workerinput:
            state.active, state.launch_error = True, workerinput["hodei_e2e_error"]
            state.launch_skipped = bool(workerinput.get("hodei_e2e_skip", False))
        return
    if config.option.collectonly or not _targets_features(config):
        return
    state.active = True
    state.started, state.started_at = time.monotonic(), utc_now()
    state.records_dir = Path(tempfile.mkdtemp(prefix="hodei-e2e-records-"))
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHandoff(state), "hodei-e2e-xdist")
    lconf = _launcher_config(config)
    try:
        launcher = make_launcher(lconf)
        state.launcher = launcher
        deployment = launcher.start()
    except Exception as exc:
        state.launch_error = f"platform did not start ({lconf.name}): {exc}"
        state.launch_skipped = bool(getattr(exc, "skip", False))
        return
    run_dir = getattr(launcher, "run_dir", None)
    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="hodei-e2e-"))
    state.info = RunInfo(
        launcher=lconf.name,
        run_dir=str(run_dir),
        deployment=_deployment_dict(deployment),
        faults=sorted(lconf.faults),
        workers=lconf.workers,
        slots=lconf.slots,
        started_at=state.started_at,
    )
    state.snapshot_before, err = _snapshot(deployment.database_url)
    if err:
        state.errors.append(err)


def _deployment_dict(dep: Any) -> dict[str, Any]:
    return {
        "mode": dep.mode,
        "database_url": dep.database_url,
        "server_address": dep.server_address,
        "owned": dep.owned,
        "processes": [
            {
                "role": p.role,
                "name": p.name,
                "pid": p.pid,
                "log_path": str(p.log_path) if p.log_path else None,
                "container_id": p.container_id,
            }
            for p in dep.processes
        ],
    }


class _XdistHandoff:
    """Registered only when xdist is present (its hook is unknown otherwise)."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_configure_node(self, node: Any) -> None:
        if self.state.records_dir is not None:
            node.workerinput["hodei_e2e_records"] = str(self.state.records_dir)
        if self.state.info is not None:
            node.workerinput["hodei_e2e"] = self.state.info.to_json()
        if self.state.launch_error:
            node.workerinput["hodei_e2e_error"] = self.state.launch_error
            node.workerinput["hodei_e2e_skip"] = self.state.launch_skipped


@pytest.fixture(scope="session")
def e2e_context(request: pytest.FixtureRequest) -> E2EContext:
    state = request.config.stash[STATE]
    if state.launch_error:
        if state.launch_skipped:
            pytest.skip(state.launch_error)
        pytest.fail(state.launch_error, pytrace=False)
    if not state.active or state.info is None:
        pytest.fail("the e2e platform was not started: run pytest on features/", pytrace=False)
    if state.context is None:
        state.context = E2EContext(state.info, state.launcher)
    return state.context


@pytest.fixture
def world(e2e_context: E2EContext, request: pytest.FixtureRequest) -> Any:
    from harness.world import World

    rec = request.node.stash.setdefault(RECORD, {})
    return World(
        ctx=e2e_context,
        metrics=rec.setdefault("metrics", {}),
        job_ids=rec.setdefault("job_ids", []),
    )


# -- per-scenario recording ------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " | ") or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:2000]


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    rec = request.node.stash.setdefault(RECORD, {})
    rec.update(
        name=scenario.name,
        feature=feature.name,
        tags=sorted(set(scenario.tags) | set(feature.tags)),
        all_steps=[f"{s.keyword} {s.name}" for s in scenario.steps],
        order=f"{feature.rel_filename}:{scenario.line_number:06d}",
        steps=[],
        t0=time.monotonic(),
    )
    rec.setdefault("metrics", {})


def pytest_bdd_before_step(request: pytest.FixtureRequest, step: Any, **_: Any) -> None:
    request.node.stash.setdefault(RECORD, {})["step_t0"] = time.monotonic()


def pytest_bdd_after_step(request: pytest.FixtureRequest, step: Any, **_: Any) -> None:
    rec = request.node.stash.setdefault(RECORD, {})
    rec.setdefault("steps", []).append(
        StepRecord(
            name=f"{step.keyword} {step.name}",
            status=Status.PASS,
            duration_s=round(time.monotonic() - rec.get("step_t0", time.monotonic()), 4),
        )
    )


def pytest_bdd_step_error(
    request: pytest.FixtureRequest, step: Any, exception: Exception, **_: Any
) -> None:
    rec = request.node.stash.setdefault(RECORD, {})
    rec.setdefault("steps", []).append(
        StepRecord(
            name=f"{step.keyword} {step.name}",
            status=Status.FAIL,
            duration_s=round(time.monotonic() - rec.get("step_t0", time.monotonic()), 4),
            error=_one_line(exception),
        )
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    rec = item.stash.get(RECORD, None)
    if rec is None and report.when == "setup" and not report.passed and _is_scenario(item):
        # The scenario never started (a fixture failed or skipped): record it all the same.
        doc = (getattr(item, "obj", None).__doc__ or item.name).split(": ", 1)
        rec = item.stash.setdefault(
            RECORD,
            {
                "name": doc[-1],
                "feature": doc[0] if len(doc) > 1 else "",
                "tags": sorted(m.name for m in item.iter_markers() if m.name in TAGS),
                "t0": time.monotonic(),
            },
        )
    if rec is None:
        return report
    if report.failed and "error" not in rec:
        rec["status"] = Status.FAIL
        rec["error"] = _report_error(report, call)
    elif report.skipped and "status" not in rec:
        rec["status"] = Status.SKIP
        rec["error"] = _skip_reason(report)
    if report.when == "teardown":
        _finish_record(item, rec)
    return report


def _is_scenario(item: pytest.Item) -> bool:
    # pytest-bdd scenario functions take its `_pytest_bdd_example` fixture.
    return "_pytest_bdd_example" in getattr(item, "fixturenames", ())


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _report_error(report: pytest.TestReport, call: pytest.CallInfo[None]) -> str:
    if call.excinfo is not None:
        return _one_line(call.excinfo.value)
    return str(report.longreprtext).strip().splitlines()[-1][:2000] if report.longreprtext else ""


def _finish_record(item: pytest.Item, rec: dict[str, Any]) -> None:
    state = item.config.stash[STATE]
    steps: list[StepRecord] = list(rec.get("steps", []))
    status = rec.get("status", Status.PASS)
    for name in rec.get("all_steps", [])[len(steps) :]:
        # Steps that never ran: after a failure, or from the one that called pytest.skip.
        reason = (
            rec.get("error", "")
            if status == Status.SKIP and not any(s.status == Status.SKIP for s in steps)
            else "not run"
        )
        steps.append(StepRecord(name=name, status=Status.SKIP, duration_s=0.0, error=reason))
    record = ScenarioRecord(
        name=rec.get("name", item.name),
        feature=rec.get("feature", ""),
        tags=list(rec.get("tags", [])),
        status=status,
        duration_s=round(time.monotonic() - rec.get("t0", time.monotonic()), 4),
        steps=steps,
        error=rec.get("error", ""),
        metrics={k: float(v) for k, v in rec.get("metrics", {}).items()},
    )
    if state.records_dir is not None:
        append_record(
            state.records_dir,
            f"p{os.getpid()}",
            record,
            job_ids=list(rec.get("job_ids", [])),
            order=rec.get("order", ""),
        )


# -- end of the run ----------------------------------------------------------------------
def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or not state.active:
        return
    if state.context is not None:
        state.context.close()
        state.context = None
    if state.is_xdist_worker:
        return
    try:
        _write_run_report(session.config, state)
    except Exception:
        state.notes.append("writing the report failed: " + traceback.format_exc(limit=3))


def _write_run_report(config: pytest.Config, state: RunState) -> None:
    info = state.info
    dep = info.deployment_obj() if info else None
    run = E2ERun(
        launcher=info.launcher if info else _launcher_config(config).name,
        deployment=dep,
        started_at=state.started_at or utc_now(),
        finished_at=utc_now(),
        duration_s=round(time.monotonic() - state.started, 3),
        launch_error=state.launch_error,
        errors=list(state.errors),
        faults=sorted(config.getoption("--hodei-fault")),
        snapshot_before=state.snapshot_before,
    )
    if state.records_dir is not None:
        run.scenarios = read_records(state.records_dir)
        run.scenario_jobs = read_job_ids(state.records_dir)
    if info is not None and dep is not None:
        run_dir = Path(info.run_dir)
        run.lifecycle_events = _lifecycle_events(dep.database_url, run, run.errors)
        run.snapshot_after, err = _snapshot(dep.database_url)
        if err:
            run.errors.append(err)
        logs = run_dir / "logs"
        if dep.mode in OWN_PLATFORM_MODES and logs.is_dir():
            run.log_dir = str(logs)
            run.log_scans = [scan_file(p.stem, p) for p in sorted(logs.glob("*.log"))]
            _add_unlisted_processes(dep, run_dir)
        _final_platform_view(run, dep.server_address)
    report_dir = Path(config.getoption("--report-dir") or config.rootpath / "reports")
    state.report_path, notes = write_report(run, report_dir, config.getoption("--report-lang"))
    state.notes.extend(notes)
    if state.records_dir is not None:
        import shutil

        shutil.rmtree(state.records_dir, ignore_errors=True)


def _lifecycle_events(url: str, run: E2ERun, errors: list[str]) -> list[dict[str, Any]]:
    """Domain events of the jobs queued by @lifecycle scenarios (else by any scenario)."""
    tagged = [s.name for s in run.scenarios if "lifecycle" in s.tags]
    names = tagged or [s.name for s in run.scenarios]
    ids = [j for name in names for j in run.scenario_jobs.get(name, [])][:5]
    if not ids:
        return []
    try:
        from hodei.diagnose.probes import lifecycle_events

        return list(lifecycle_events(url, ids))
    except Exception as exc:
        errors.append(f"lifecycle events query failed: {type(exc).__name__}: {exc}")
        return []


def _add_unlisted_processes(dep: Any, run_dir: Path) -> None:
    """Workers started during the run (replacements, possibly by xdist workers) are part
    of the deployment too: take them from the run's process registry."""
    import json

    from harness.launchers.base import ProcessInfo

    registry = run_dir / "processes.jsonl"
    known = {p.pid for p in dep.processes}
    if not registry.exists():
        return
    for line in registry.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry["pid"] not in known:
            dep.processes.append(
                ProcessInfo(
                    role=entry["role"],
                    name=entry["name"],
                    pid=entry["pid"],
                    log_path=Path(entry["log_path"]),
                )
            )


def _final_platform_view(run: E2ERun, address: str) -> None:
    from harness.driver import Driver

    try:
        driver = Driver(address)
    except Exception as exc:
        run.errors.append(f"server {address} unreachable at the end of the run: {exc}")
        return
    try:
        run.server_info = driver.server_info()
        run.workers = [
            {
                "id": w.id,
                "name": w.name,
                "pid": w.pid,
                "state": str(w.state),
                "connected": w.connected,
            }
            for w in driver.workers(include_gone=True)
        ]
    except Exception as exc:
        run.errors.append(
            f"server {address} did not answer at the end of the run: {_one_line(exc)}"
        )
    finally:
        driver.close()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.active or state.is_xdist_worker:
        return
    for note in state.notes:
        terminalreporter.write_line(f"hodei e2e: {note}", yellow=True)
    if state.launch_error:
        terminalreporter.write_line(f"hodei e2e: {state.launch_error}", red=True)
    if state.report_path is not None:
        terminalreporter.write_line(f"hodei e2e report: {state.report_path}", bold=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.launcher is not None:
        state.launcher.stop()
        state.launcher = None
