"""Running the e2e harness as a user would: `pytest features/` in a subprocess, with
the report it wrote read back. Shared by the harness's integration tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def run_features(
    report_dir: Path,
    *args: str,
    timeout_s: float = 240,
    temp_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`pytest features/ <args>` as a user would run it; returns latest.json.

    With `temp_dir`, the run makes its temporary directories there (TMPDIR); `env`: more
    variables for the run (HODEI_E2E_TOKEN)."""
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HODEI_", "PYTEST_", "COV_"))}
    env.update(extra)
    if temp_dir is not None:
        env["TMPDIR"] = str(temp_dir)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "features",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore",
            "--report-dir",
            str(report_dir),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    latest = report_dir / "latest.json"
    assert latest.exists(), f"no report written; pytest said: {proc.stdout[-2000:]}"
    assert f"hodei e2e report: {report_dir}" in proc.stdout, proc.stdout[-1000:]
    assert (report_dir / "latest.md").exists()
    report: dict[str, Any] = json.loads(latest.read_text())
    report["_stdout"] = proc.stdout
    report["_returncode"] = proc.returncode
    return report


def run_dirs(temp_dir: Path) -> list[Path]:
    return sorted(temp_dir.glob("hodei-e2e-*"))
