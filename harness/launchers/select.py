"""The one place that turns `--launcher` / HODEI_E2E_LAUNCHER into a Launcher."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from harness.launchers.base import Launcher
from harness.launchers.local import LaunchError, LocalLauncher, LocalOptions

LAUNCHERS = ("local", "live", "containers")


@dataclass
class LauncherConfig:
    name: str = "local"
    database_url: str | None = None  # live: the deployment; local: a server to create a DB on
    server: str | None = None  # live only
    workers: int = 2
    slots: int = 4
    faults: frozenset[str] = frozenset()
    run_dir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)


def make_launcher(config: LauncherConfig) -> Launcher:
    if config.name == "local":
        return LocalLauncher(
            LocalOptions(
                workers=config.workers,
                slots=config.slots,
                faults=config.faults,
                admin_database_url=config.database_url,
                run_dir=config.run_dir,
            )
        )
    if config.faults:
        raise LaunchError(f"faults can only be injected by the local launcher, not {config.name}")
    if config.name == "live":
        from harness.launchers.live import LiveLauncher

        return LiveLauncher(config.database_url, config.server)
    if config.name == "containers":
        # Implemented in its own issue; until harness/launchers/containers.py exists,
        # say so rather than pretend.
        try:
            module = importlib.import_module("harness.launchers.containers")
        except ModuleNotFoundError as exc:
            if exc.name != "harness.launchers.containers":
                raise
            raise LaunchError(
                "the containers launcher is not implemented yet "
                "(harness/launchers/containers.py is missing); use --launcher local or live"
            ) from None
        factory = getattr(module, "make_launcher", None)
        if factory is None:
            raise LaunchError("harness/launchers/containers.py defines no make_launcher(config)")
        launcher: Launcher = factory(config)
        return launcher
    raise LaunchError(f"unknown launcher {config.name!r}; choose one of {', '.join(LAUNCHERS)}")
