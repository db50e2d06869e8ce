"""How long hodei-diagnose takes to name each fault: a script that prints figures.

    .venv/bin/python benchmarks/diagnose_faults.py [--runs 3] [--database-url URL] [-k EXPR]

Runs the repository's fault suite (tests/integration/diagnose/test_faults_*.py) `--runs`
times with HODEI_FAULT_TIMES set: each fault test injects its fault from outside into a
real deployment and records the seconds from "the fault became observable" to the end
of the hodei-diagnose run that named it (tests/integration/diagnose/fault_timing.py).
Prints the Markdown table that docs/diagnose.md quotes: fault, finding, median and max
time to detect, and how many runs named it. `--check` exits 1 when a fault's median is
above --target seconds (default 5, the issue's target) or a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "tests/integration/diagnose").glob("test_faults_*.py")
)


def run_suite(times: Path, database_url: str | None, select: str | None) -> int:
    env = dict(os.environ, HODEI_FAULT_TIMES=str(times))
    if database_url:
        env["HODEI_TEST_DATABASE_URL"] = database_url
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    cmd += ["-k", select] if select else []
    return subprocess.call([*cmd, *SUITE], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def table(rows: list[dict[str, object]], runs: int) -> str:
    by_fault: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        by_fault[(str(row["fault"]), str(row["code"]))].append(float(str(row["seconds"])))
    lines = [
        "| fault | finding | median to name | max | named in |",
        "|---|---|---:|---:|---:|",
    ]
    for (fault, code), seconds in sorted(by_fault.items()):
        lines.append(
            f"| {fault} | `{code}` | {statistics.median(seconds):.1f} s | {max(seconds):.1f} s "
            f"| {len(seconds)}/{runs} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", help="default: the tests' embedded PostgreSQL")
    parser.add_argument("-k", dest="select", help="pytest -k expression (a subset of faults)")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--target", type=float, default=5.0)
    args = parser.parse_args()
    if not SUITE:
        print("no fault tests found under tests/integration/diagnose/", file=sys.stderr)
        return 2
    failed_runs = 0
    with tempfile.TemporaryDirectory() as tmp:
        times = Path(tmp) / "times.jsonl"
        times.touch()
        for n in range(1, args.runs + 1):
            start = time.monotonic()
            code = run_suite(times, args.database_url, args.select)
            failed_runs += code != 0
            print(f"run {n}/{args.runs}: pytest exit {code} in {time.monotonic() - start:.0f} s")
        rows = [json.loads(line) for line in times.read_text().splitlines() if line.strip()]
    print()
    print(table(rows, args.runs))
    if not args.check:
        return 0
    slow = {
        r["fault"] for r in rows if float(r["seconds"]) > args.target
    }  # any single run above target is shown; the median decides below
    medians: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        medians[r["fault"]].append(float(r["seconds"]))
    missed = sorted(f for f, s in medians.items() if statistics.median(s) > args.target)
    if missed or failed_runs:
        print(f"\nmissed: median above {args.target:.0f} s: {missed}; failed runs: {failed_runs}")
        return 1
    if slow:
        print(f"\n(single runs above {args.target:.0f} s: {sorted(slow)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
