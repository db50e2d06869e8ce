"""The worker's command line, in one place: the settings `hodei worker` and
`python -m hodei.worker` take as flags, and the argv that starts a worker process
(`hodei up`, the tests, the harness's local launcher)."""

from __future__ import annotations

import sys
from pathlib import Path

from hodei.settings import setting_field

#: Settings a worker takes as flags (hodei.flags builds them).
WORKER_OPTIONS = (
    "server.address",
    "worker.slots",
    "worker.name",
    "worker.labels",
    "client.token",
    "logging.level",
    "logging.format",
    "logging.file",
    "tls.ca",
    "tls.client_cert",
    "tls.client_key",
    "tls.server_name",
    "metrics.enabled",
    "metrics.worker_port",
)


def worker_command(
    server_address: str,
    *,
    slots: int | None = None,
    name: str | None = None,
    log_level: str | None = None,
    log_format: str | None = None,
    log_file: Path | None = None,
    python: str = sys.executable,
) -> list[str]:
    """`python -m hodei.worker --server ADDRESS ...`; None leaves a setting to the
    environment. Any other setting goes in the environment (hodei.settings.environment_for),
    the token too (HODEI_TOKEN): an argument would show it to anyone who runs `ps`.
    """
    values: dict[str, object | None] = {
        "server.address": server_address,
        "worker.slots": slots,
        "worker.name": name,
        "logging.level": log_level,
        "logging.format": log_format,
        "logging.file": log_file,
    }
    argv = [python, "-m", "hodei.worker"]
    for path, value in values.items():
        if value is not None:
            argv += [str(setting_field(path).flag), str(value)]
    return argv
