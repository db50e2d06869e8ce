"""The harness's pytest options and markers, and what they ask for: whether this run
is an e2e run at all, which launcher, where the report goes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.launchers.base import LAUNCHERS, TLS_OPTIONS, LauncherConfig
from harness.launchers.local import FAULTS

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
    "chaos": "a private platform broken from outside under a burst (local launcher only)",
    "metrics": "a real Prometheus scrapes the platform (local launcher only)",
    "providers": "workers provisioned on demand by the Docker provider (containers launcher only)",
}


#: ini key naming the features directory (relative to the rootdir). The plugin loads in
#: every pytest run of an environment where hodei is installed, so it acts only in a
#: project that opts in: Hodei's pyproject.toml sets `hodei_e2e_features = "features"`.
FEATURES_INI = "hodei_e2e_features"


def add_options(parser: pytest.Parser) -> None:
    parser.addini(
        FEATURES_INI,
        "the features directory the Hodei e2e harness runs (relative to the rootdir); "
        "unset: the harness does nothing",
        default="",
    )
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
    for name, what in TLS_OPTIONS.items():
        flag = "--tls-" + name.replace("_", "-")
        group.addoption(flag, default=None, help=f"live: {what} [env {_tls_env(name)}]")
    group.addoption(
        "--token",
        default=None,
        help="live: the token the harness calls the server with (least role: client; it "
        "submits, reads and cancels its own test jobs) [env HODEI_E2E_TOKEN]",
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
    group.addoption(
        "--keep-run-dir",
        action="store_true",
        help="keep the run directory (process logs, the embedded database) after a green "
        "run too; a red run always keeps it",
    )


def register_markers(config: pytest.Config) -> None:
    for tag, text in TAGS.items():
        config.addinivalue_line("markers", f"{tag}: {text}")


def targets_features(config: pytest.Config) -> bool:
    """Whether this run collects the opted-in features directory (else the harness
    stays out of the way: `pytest tests/`, or another project's tests, start nothing)."""
    configured = str(config.getini(FEATURES_INI) or "").strip()
    if not configured:
        return False
    features = (config.rootpath / configured).resolve()
    if not features.is_dir():
        return False
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


def launcher_config(config: pytest.Config) -> LauncherConfig:
    name = _env_or(config.getoption("--launcher"), "HODEI_E2E_LAUNCHER") or "local"
    db = _env_or(config.getoption("--database-url"), "HODEI_E2E_DATABASE_URL")
    if name == "local" and db is None:
        db = os.environ.get("HODEI_DATABASE_URL") or None
    return LauncherConfig(
        name=name,
        database_url=db,
        server=_env_or(config.getoption("--server"), "HODEI_E2E_SERVER"),
        token=_env_or(config.getoption("--token"), "HODEI_E2E_TOKEN"),
        workers=config.getoption("--e2e-workers"),
        slots=config.getoption("--e2e-slots"),
        faults=frozenset(config.getoption("--hodei-fault")),
        tls=_tls(config),
    )


def _tls_env(name: str) -> str:
    return f"HODEI_E2E_TLS_{name.upper()}"


def _tls(config: pytest.Config) -> dict[str, str]:
    """The live deployment's TLS, by client setting name; empty: plaintext."""
    values = {
        name: _env_or(config.getoption("--tls-" + name.replace("_", "-")), _tls_env(name))
        for name in TLS_OPTIONS
    }
    return {name: value for name, value in values.items() if value}


def report_dir(config: pytest.Config) -> Path:
    return Path(config.getoption("--report-dir") or config.rootpath / "reports")


def keep_run_dir(config: pytest.Config) -> bool:
    return bool(config.getoption("--keep-run-dir"))


def report_lang(config: pytest.Config) -> str:
    return str(config.getoption("--report-lang"))


def faults(config: pytest.Config) -> list[str]:
    return sorted(config.getoption("--hodei-fault"))
