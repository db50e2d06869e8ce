"""The CLI's boundary: options, exit codes, one-line errors, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hodei.diagnose.registry import Thresholds
from hodei.diagnose.runner import select_checks

pytestmark = pytest.mark.integration


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hodei.diagnose.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin"},
    )


def test_list_checks_names_every_check_and_threshold() -> None:
    out = cli("--list-checks")
    assert out.returncode == 0
    for cid in (
        "database.connect",
        "server.health",
        "dispatcher.progress",
        "outbox.flow",
        "consistency.pending_unqueued",
        "canary.logs",
        "logs.grpc_errors",
    ):
        assert cid in out.stdout
    assert "pending_age_s = 30.0" in out.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--threshold", "nope=1"], "unknown threshold 'nope=1'"),
        (["--threshold", "pending_age_s=soon"], "threshold pending_age_s needs a number"),
        (["--only", "dispatcher.nothing"], "unknown check id 'dispatcher.nothing'"),
        (["--database-url", "mysql://x"], "invalid setting 'database.url'"),
        (["--threshold", "pending_age_s"], "threshold pending_age_s needs a value"),
        (
            ["--server-log", "/nonexistent/server.log"],
            "log file /nonexistent/server.log: not found",
        ),
        (["--worker-log", "/tmp"], "log file /tmp: is a directory"),
        (["--worker-log", "/dev/null"], "log file /dev/null: not a regular file"),
        (["--lang", "fr"], "invalid choice: 'fr'"),
    ],
)
def test_bad_input_is_one_line_and_exit_3(args: list[str], message: str) -> None:
    out = cli(*args)
    assert out.returncode == 3, out
    assert message in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_unreachable_targets_exit_3_with_redacted_url(tmp_path: Path) -> None:
    report = tmp_path / "r.md"
    out = cli(
        "--database-url",
        "postgresql://u:hunter2@127.0.0.1:1/db",
        "--server",
        "127.0.0.1:1",
        "--output",
        str(report),
        "--lang",
        "es",
    )
    assert out.returncode == 3, out
    assert "[✗] PostgreSQL" in out.stdout and "[✗] gRPC server" in out.stdout
    assert (
        "Root cause: nothing accepts connections for the database at "
        "postgresql://u:***@127.0.0.1:1/db (Connection refused)" in out.stdout
    )
    text = report.read_text()
    assert "## 📋 Resumen Ejecutivo" in text and "## 📋 Checklist de Verificación Post-Fix" in text
    assert "hunter2" not in out.stdout + out.stderr + text
    assert "Traceback" not in out.stderr


def test_only_and_skip_select_by_id_or_prefix() -> None:
    assert [c.id for c in select_checks(["workers"], [])] == [
        "workers.ready",
        "workers.heartbeat",
        "workers.busy_without_job",
        "workers.stream",
        "workers.clock",
    ]
    ids = [c.id for c in select_checks([], ["canary", "logs.grpc_errors"])]
    assert "canary.logs" not in ids and "logs.grpc_errors" not in ids and "server.health" in ids


def test_threshold_overrides_keep_types() -> None:
    t = Thresholds().with_overrides(["pending_age_s=5", "queue_depth_warn=7"])
    assert (
        t.pending_age_s == 5.0 and t.queue_depth_warn == 7 and isinstance(t.queue_depth_warn, int)
    )


def test_finds_the_running_embedded_database_without_starting_one(tmp_path: Path) -> None:
    import asyncio

    import pgserver

    from hodei.db.databases import create_database
    from hodei.db.migrate import migrate

    data_dir = tmp_path / "pgdata"
    env = {"PATH": "/usr/bin", "HODEI_DATA_DIR": str(data_dir)}
    cmd = [sys.executable, "-m", "hodei.diagnose.cli", "--only", "database"]
    # Not running: nothing is started, the database checks are skipped.
    off = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert off.returncode == 0 and "no --database-url" in off.stdout
    # Every check skipped is not "no issues found".
    assert "Nothing was checked: every check was skipped" in off.stdout, off.stdout
    assert "No issues found" not in off.stdout
    assert not (data_dir / "postmaster.pid").exists()

    server = pgserver.get_server(str(data_dir), cleanup_mode="stop")
    try:
        asyncio.run(migrate(create_database(server.get_uri(), "hodei")))
        on = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    finally:
        server.cleanup()
    assert on.returncode == 0, on.stdout + on.stderr
    assert f"host={data_dir}" in on.stdout and "[✓] PostgreSQL" in on.stdout
    # Stopped again (the data directory stays): named as the embedded database down,
    # not "no --database-url"; and nothing is started.
    stopped = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "DATABASE_DOWN" in stopped.stdout and f"host={data_dir}" in stopped.stdout
    assert "run `hodei up` again" in stopped.stdout
    assert not (data_dir / "postmaster.pid").exists()
