"""`hodei e2e` as a user runs it (output not a terminal, as in CI or a pipe)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.harness.feature_runs import ROOT, run_dirs

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_parallel_run_prints_its_status_once_and_leaves_no_run_directory(
    tmp_path: Path, run_temp: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HODEI_", "PYTEST_"))}
    env["TMPDIR"] = str(run_temp)
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "harness.e2e", "-n", "2", "-k", "layer"),
            *("--report-dir", str(tmp_path), "--", "-p", "no:cacheprovider"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("bringing up nodes...") <= 1, proc.stdout
    assert "2 workers [1 item]" in proc.stdout, proc.stdout
    assert f"hodei e2e report: {tmp_path}" in proc.stdout
    assert run_dirs(run_temp) == []
