"""Benchmark of `hodei-diagnose` (a script that prints figures, not a timed test).

    python -m benchmarks.bench_diagnose [-n 10] [--database-url URL --server HOST:PORT]

Without targets it starts a healthy local deployment (embedded PostgreSQL, one server,
one worker) with the harness's local launcher, and stops it afterwards. It runs the real
command N times without --canary and once with it, and prints the wall time of each run
(Python start-up included) and the time the checks themselves took.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _once(database_url: str, server: str, out: Path, *extra: str) -> tuple[float, float, int]:
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hodei.diagnose.cli",
            "--database-url",
            database_url,
            "--server",
            server,
            "--format",
            "json",
            "--output",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall = time.perf_counter() - start
    report = json.loads(out.read_text())
    return wall, float(report["duration_s"]), proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_diagnose")
    parser.add_argument("-n", type=int, default=10, help="runs without --canary")
    parser.add_argument("--database-url")
    parser.add_argument("--server")
    args = parser.parse_args(argv)
    launcher = None
    if not (args.database_url and args.server):
        from harness.launchers.local import LocalLauncher, LocalOptions

        launcher = LocalLauncher(LocalOptions(workers=1))
        deployment = launcher.start()
        database_url, server = deployment.database_url, deployment.server_address
        time.sleep(1.0)  # let the worker's first heartbeat land
    else:
        database_url, server = args.database_url, args.server
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "r.json"
            runs = [_once(database_url, server, out) for _ in range(args.n)]
            canary = _once(database_url, server, out, "--canary")
    finally:
        if launcher is not None:
            launcher.stop()
    walls = sorted(r[0] for r in runs)
    checks = sorted(r[1] for r in runs)
    codes = sorted({r[2] for r in runs})
    print(f"hodei-diagnose without --canary, {len(runs)} runs, exit codes {codes}:")
    print(
        f"  wall   p50 {statistics.median(walls):.3f} s  max {walls[-1]:.3f} s  "
        f"min {walls[0]:.3f} s"
    )
    print(f"  checks p50 {statistics.median(checks):.3f} s  max {checks[-1]:.3f} s")
    print(
        f"hodei-diagnose --canary: wall {canary[0]:.3f} s, checks {canary[1]:.3f} s, "
        f"exit {canary[2]}"
    )
    return 0 if codes == [0] and canary[2] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
