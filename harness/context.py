"""What one pytest process knows about the run: the deployment and how to drive it.

Without xdist, the process that starts the platform also drives it. Under xdist
the controller starts the platform once and hands its description
(`RunInfo.to_json`) to each worker, which attaches to it: one deployment, one
database, one set of logs, one merged report.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.driver import Driver
from harness.launchers.base import (
    HEARTBEAT_PERIOD_S,
    KEEPALIVE_PERIOD_S,
    Deployment,
    Launcher,
    ProcessInfo,
)
from harness.launchers.local import LocalLauncher, LocalOptions
from harness.root_cause import BlockedByRootCause, RootCauseWatch
from harness.tables import Tables

#: Launchers that start the platform themselves, with the local launcher's short
#: intervals (RUN_SETTINGS) and one log file per process under <run dir>/logs.
OWN_PLATFORM_MODES = ("local", "containers")


@runtime_checkable
class ProcessControl(Protocol):
    """What scenarios that kill and replace workers need from a launcher."""

    def kill_process(self, pid: int) -> None: ...

    def start_worker(self, wait: bool = True) -> ProcessInfo: ...


@dataclass
class RunInfo:
    """The run as the controller started it, passed to xdist workers."""

    launcher: str
    run_dir: str
    deployment: dict[str, Any]
    faults: list[str] = field(default_factory=list)
    workers: int = 2
    slots: int = 4
    started_at: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> RunInfo:
        return cls(**json.loads(text))

    def deployment_obj(self) -> Deployment:
        data = dict(self.deployment)
        procs = [
            ProcessInfo(**{**p, "log_path": Path(p["log_path"]) if p.get("log_path") else None})
            for p in data.pop("processes", [])
        ]
        return Deployment(processes=procs, **data)


class E2EContext:
    """Session-wide handles: deployment, driver, tables, process control."""

    def __init__(self, info: RunInfo, launcher: Launcher | None) -> None:
        self.info = info
        self.deployment = info.deployment_obj()
        self.mode = self.deployment.mode
        self.server_address = self.deployment.server_address
        self.run_dir = Path(info.run_dir)
        self._launcher = launcher
        if launcher is None and self.mode == "local":
            # An xdist worker: attach a launcher to the controller's deployment so
            # that scenarios can still kill and replace workers.
            local = LocalLauncher(
                LocalOptions(
                    workers=0, slots=info.slots, faults=frozenset(info.faults), run_dir=self.run_dir
                )
            )
            local.deployment = self.deployment
            local.worker_prefix = f"worker-x{os.getpid()}-"
            self._launcher = local
        elif launcher is None and self.mode == "containers":
            # The same for a containers run, when Docker answers here.
            from harness.launchers.containers import ContainersLauncher

            with contextlib.suppress(Exception):
                self._launcher = ContainersLauncher.attach(
                    self.deployment, self.run_dir, info.slots, f"worker-x{os.getpid()}-"
                )
        self.driver = Driver(
            self.server_address, self.deployment.client_tls(), self.deployment.token
        )
        self.tables = Tables(self.deployment.database_url)
        self.root_cause = RootCauseWatch(self.run_dir, self.deployment.database_url)
        owned = self.mode in OWN_PLATFORM_MODES
        self.keepalive_period_s = KEEPALIVE_PERIOD_S if owned else 10.0
        self.heartbeat_period_s = HEARTBEAT_PERIOD_S if owned else 5.0

    @property
    def can_kill_processes(self) -> bool:
        return bool(getattr(self._launcher, "can_kill_processes", False))

    @property
    def no_kill_reason(self) -> str:
        return str(
            getattr(
                self._launcher,
                "skip_reason",
                f"the {self.mode} launcher cannot kill platform processes",
            )
        )

    def log_files(self) -> list[Path]:
        logs = self.run_dir / "logs"
        owned = self.mode in OWN_PLATFORM_MODES
        return sorted(logs.glob("*.log")) if owned and logs.is_dir() else []

    def _process_control(self) -> ProcessControl:
        # local (processes) and containers (containers) both implement it.
        if not isinstance(self._launcher, ProcessControl) or not self.can_kill_processes:
            raise RuntimeError(self.no_kill_reason)
        return self._launcher

    def kill_worker(self, pid: int) -> None:
        self._process_control().kill_process(pid)

    def start_worker(self) -> ProcessInfo:
        return self._process_control().start_worker()

    def give_up(self, what: str, waited_s: float) -> BaseException | None:
        """For harness.waits: give up a wait at once when the run already knows a
        critical root cause that explains it (see harness/root_cause.py)."""
        cause = self.root_cause.check(waited_s)
        return None if cause is None else BlockedByRootCause(what, waited_s, cause)

    def cli_env(self) -> dict[str, str]:
        """Environment for a `hodei` CLI subprocess pointed at this deployment."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
        env["HODEI_SERVER_ADDRESS"] = self.server_address
        env.update(self.deployment.tls_environment())
        if self.deployment.token:
            env["HODEI_TOKEN"] = self.deployment.token
        return env

    def close(self) -> None:
        self.driver.close()
