"""What the controller gathers when the scenarios are done, for the run's report: the
merged scenario records, the lifecycle events, the snapshot after, the log scans, the
platform's own view; harness.e2e_run.write_report renders it."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

from harness.context import OWN_PLATFORM_MODES
from harness.driver import Driver
from harness.e2e_run import E2ERun, read_job_ids, read_records, utc_now, write_report
from harness.launchers.base import Deployment, ProcessInfo
from harness.recording import one_line
from harness.session import RunState, snapshot
from hodei.diagnose.evidence import scan_file
from hodei.report.model import Phrase


def write_run_report(
    state: RunState, launcher: str, faults: list[str], report_dir: Path, lang: str
) -> None:
    """Write the report; its path and any notes go into `state`."""
    info = state.info
    dep = info.deployment_obj() if info else None
    run = E2ERun(
        launcher=info.launcher if info else launcher,
        deployment=dep,
        started_at=state.started_at or utc_now(),
        finished_at=utc_now(),
        duration_s=round(time.monotonic() - state.started, 3),
        launch_error=state.launch_error,
        errors=list(state.errors),
        faults=faults,
        snapshot_before=state.snapshot_before,
        timings=dict(state.timings),
    )
    if state.records_dir is not None:
        run.scenarios = read_records(state.records_dir)
        run.scenario_jobs = read_job_ids(state.records_dir)
    if info is not None and dep is not None:
        run_dir = Path(info.run_dir)
        run.lifecycle_events = _lifecycle_events(dep.database_url, run, run.errors)
        run.snapshot_after, err = snapshot(dep.database_url)
        if err:
            run.errors.append(err)
        logs = run_dir / "logs"
        if dep.mode in OWN_PLATFORM_MODES and logs.is_dir():
            run.log_dir = str(logs)
            run.log_scans = [scan_file(p.stem, p) for p in sorted(logs.glob("*.log"))]
            _add_unlisted_processes(dep, run_dir)
        _final_platform_view(run, dep)
        run.deployment_note, reopen = deployment_note(state, dep)
        if reopen:
            state.notes.append(f"start the run's database again: {reopen}")
    state.report_path, notes = write_report(run, report_dir, lang)
    state.notes.extend(notes)


def deployment_note(state: RunState, dep: Deployment) -> tuple[Phrase, str]:
    """What the report's debug commands can still reach once the run has ended, and the
    command that starts the kept embedded database again ("" when there is none)."""
    run_dir = str(state.run_dir or "")
    if dep.mode == "live":
        return Phrase(code="DEPLOY_LIVE"), ""
    if state.removes_run_dir or dep.mode != "local":
        return Phrase(code="DEPLOY_GONE", params={"run_dir": run_dir}), ""
    pgdata = Path(run_dir) / "pg"
    if not pgdata.is_dir():
        return Phrase(code="DEPLOY_KEPT_DATABASE", params={"run_dir": run_dir}), ""
    command = f"hodei e2e --reopen {shlex.quote(run_dir)}"
    params = {"run_dir": run_dir, "command": command, "stop": f"{command} --stop"}
    return Phrase(code="DEPLOY_KEPT_EMBEDDED", params=params), command


def _lifecycle_events(url: str, run: E2ERun, errors: list[str]) -> list[dict[str, Any]]:
    """Domain events of the jobs queued by @lifecycle scenarios (else by any scenario)."""
    tagged = [s.name for s in run.scenarios if "lifecycle" in s.tags]
    # Never the burst jobs: the timeline is one job's lifecycle.
    names = tagged or [s.name for s in run.scenarios if not {"throughput", "chaos"} & set(s.tags)]
    ids = [j for name in names for j in run.scenario_jobs.get(name, [])][:1]
    if not ids:
        return []
    try:
        from hodei.diagnose.probes import lifecycle_events

        return list(lifecycle_events(url, ids))
    except Exception as exc:
        errors.append(f"lifecycle events query failed: {type(exc).__name__}: {exc}")
        return []


def _add_unlisted_processes(dep: Deployment, run_dir: Path) -> None:
    """Workers started during the run (replacements, possibly by xdist workers) are part
    of the deployment too: take them from the run's process registry."""
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
                    metrics_port=int(entry.get("metrics_port", 0)),
                )
            )


def _final_platform_view(run: E2ERun, dep: Deployment) -> None:
    address = dep.server_address
    try:
        driver = Driver(address, dep.client_tls(), dep.token)
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
        run.errors.append(f"server {address} did not answer at the end of the run: {one_line(exc)}")
    finally:
        driver.close()
