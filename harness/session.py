"""One e2e run from the side of a pytest process: the platform it started (or was
handed by the xdist controller), and its end.

The controller (or the only process, without xdist) starts the platform once, takes
the database snapshot before, and hands the run to each xdist worker through
`workerinput`; the workers attach to it. At the very end the controller stops the
platform and removes the run directory if the run was green; after a red run the
directory (logs, processes.jsonl) is kept for whoever reads the report.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.context import E2EContext, RunInfo
from harness.e2e_run import utc_now
from harness.launchers.base import Deployment, Launcher, LauncherConfig
from harness.launchers.local import LocalLauncher
from harness.launchers.select import make_launcher

#: Keys of xdist's workerinput through which the controller hands the run over.
_INFO, _ERROR, _SKIP, _RECORDS = (
    "hodei_e2e",
    "hodei_e2e_error",
    "hodei_e2e_skip",
    ("hodei_e2e_records"),
)


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
    #: The run's directory (logs, processes.jsonl), also when the platform did not start.
    run_dir: Path | None = None
    #: Set at the session's end: every scenario passed (the run directory then goes).
    green: bool = False
    #: --keep-run-dir: keep the run directory after a green run too.
    keep_run_dir: bool = False
    #: The launcher's start-up times (server_start_s, workers_ready_s, workers).
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def removes_run_dir(self) -> bool:
        return self.green and not self.keep_run_dir and self.run_dir is not None

    def context_for_scenarios(self) -> E2EContext:
        """The session's E2EContext; skips or fails the scenario when there is no platform."""
        if self.launch_error:
            if self.launch_skipped:
                pytest.skip(self.launch_error)
            pytest.fail(self.launch_error, pytrace=False)
        if not self.active or self.info is None:
            pytest.fail("the e2e platform was not started: run pytest on features/", pytrace=False)
        if self.context is None:
            self.context = E2EContext(self.info, self.launcher)
        return self.context


def snapshot(url: str) -> tuple[Any, str]:
    """hodei-diagnose's database snapshot, or None and why not."""
    from hodei.diagnose.probes import take_snapshot

    try:
        return take_snapshot(url), ""
    except Exception as exc:
        return None, f"database snapshot failed: {type(exc).__name__}: {exc}"


def begin(lconf: LauncherConfig) -> RunState:
    """Start the platform for this run (controller side)."""
    state = RunState(active=True, started=time.monotonic(), started_at=utc_now())
    state.records_dir = Path(tempfile.mkdtemp(prefix="hodei-e2e-records-"))
    try:
        launcher = make_launcher(lconf)
        state.launcher = launcher
        state.run_dir = getattr(launcher, "run_dir", None)
        deployment = launcher.start()
    except Exception as exc:
        state.launch_error = f"platform did not start ({lconf.name}): {exc}"
        state.launch_skipped = bool(getattr(exc, "skip", False))
        return state
    if state.run_dir is None:  # live: nothing of its own to keep but the run's name
        state.run_dir = Path(tempfile.mkdtemp(prefix="hodei-e2e-"))
    state.info = RunInfo(
        launcher=lconf.name,
        run_dir=str(state.run_dir),
        deployment=_deployment_dict(deployment),
        faults=sorted(lconf.faults),
        workers=lconf.workers,
        slots=lconf.slots,
        started_at=state.started_at,
    )
    state.timings = dict(getattr(launcher, "timings", {}) or {})
    state.snapshot_before, err = snapshot(deployment.database_url)
    if err:
        state.errors.append(err)
    return state


def attach(workerinput: dict[str, Any]) -> RunState:
    """The run as the xdist controller handed it to this worker."""
    state = RunState(is_xdist_worker=True)
    if _RECORDS in workerinput:
        state.records_dir = Path(workerinput[_RECORDS])
    if _INFO in workerinput or _ERROR in workerinput:
        state.active = True
        if _INFO in workerinput:
            state.info = RunInfo.from_json(workerinput[_INFO])
            state.run_dir = Path(state.info.run_dir)
        state.launch_error = workerinput.get(_ERROR, "")
        state.launch_skipped = bool(workerinput.get(_SKIP, False))
    return state


class XdistHandoff:
    """Registered only when xdist is present (its hook is unknown otherwise)."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_configure_node(self, node: Any) -> None:
        if self.state.records_dir is not None:
            node.workerinput[_RECORDS] = str(self.state.records_dir)
        if self.state.info is not None:
            node.workerinput[_INFO] = self.state.info.to_json()
        if self.state.launch_error:
            node.workerinput[_ERROR] = self.state.launch_error
            node.workerinput[_SKIP] = self.state.launch_skipped


def end(state: RunState) -> None:
    """Stop the platform (controller side) and tidy the temp directory: the records are
    in the report by now; the run directory goes only after a green run."""
    if state.launcher is not None:
        keeps = not state.is_xdist_worker and not state.removes_run_dir
        if keeps and isinstance(state.launcher, LocalLauncher):
            # The run directory stays: so do the embedded database and the run's
            # database, which the report's debug commands point at.
            state.launcher.options.keep_run_dir = True
        state.launcher.stop()
        state.launcher = None
    if state.is_xdist_worker:
        return
    if state.records_dir is not None:
        shutil.rmtree(state.records_dir, ignore_errors=True)
    if state.removes_run_dir and state.run_dir is not None:
        shutil.rmtree(state.run_dir, ignore_errors=True)


def _deployment_dict(dep: Deployment) -> dict[str, Any]:
    return {
        "mode": dep.mode,
        "database_url": dep.database_url,
        "server_address": dep.server_address,
        "owned": dep.owned,
        "tls": dep.tls,
        "token": dep.token,
        "worker_token": dep.worker_token,
        "processes": [
            {
                "role": p.role,
                "name": p.name,
                "pid": p.pid,
                "log_path": str(p.log_path) if p.log_path else None,
                "container_id": p.container_id,
                "metrics_port": p.metrics_port,
            }
            for p in dep.processes
        ],
    }
