"""The one place that turns `--launcher` / HODEI_E2E_LAUNCHER into a Launcher."""

from __future__ import annotations

from harness.launchers.base import LAUNCHERS, Launcher, LauncherConfig, LaunchError


def make_launcher(config: LauncherConfig) -> Launcher:
    # Imported on demand: the containers launcher pulls in testcontainers, which a
    # local or live run does not need.
    if config.name == "local":
        from harness.launchers.local import LocalLauncher, LocalOptions

        return LocalLauncher(
            LocalOptions(
                workers=config.workers,
                slots=config.slots,
                faults=config.faults,
                admin_database_url=config.database_url,
                run_dir=config.run_dir,
            )
        )
    if config.name not in LAUNCHERS:
        raise LaunchError(f"unknown launcher {config.name!r}; choose one of {', '.join(LAUNCHERS)}")
    if config.faults:
        raise LaunchError(f"faults can only be injected by the local launcher, not {config.name}")
    if config.name == "live":
        from harness.launchers.live import LiveLauncher

        return LiveLauncher(config.database_url, config.server, config.tls, config.token or "")
    from harness.launchers.containers import make_launcher as make_containers_launcher

    return make_containers_launcher(config)
