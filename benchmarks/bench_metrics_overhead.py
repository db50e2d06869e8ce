"""What enabling metrics costs in throughput (issue 15: under 5 %): a script that
prints figures (not a test).

    .venv/bin/python benchmarks/bench_metrics_overhead.py [--pairs 5] [--jobs 2000]
        [--scrape-interval 1] [-- extra bench_platform.py arguments]

Runs benchmarks/bench_platform.py's throughput phase (its own platform each time: a
fresh embedded PostgreSQL, a server, 2 workers x 16 slots) with `--metrics on` (every
endpoint scraped every --scrape-interval s) and `--metrics off` (HODEI_METRICS=false)
in turn, on then off, --pairs times after one warm-up pair, and prints each pair's
jobs/s and the platform's CPU per job (server + workers + PostgreSQL, the figure that
bounds throughput on a busy machine and varies less than jobs/s when other processes
share it) with their on/off ratios, then the medians. Pairing keeps the comparison fair while the
machine's speed drifts (a shared machine's load changes from one minute to the next):
quote the median of the ratios.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

_BENCH = Path(__file__).with_name("bench_platform.py")
_RATE = re.compile(r"all finished in\s+[\d.]+ s\s+->\s+(\d+) jobs/s")
_CPU = re.compile(r"CPU per job: server ([\d.]+) ms, workers ([\d.]+) ms, postgres ([\d.]+) ms")


def run(metrics: str, args: argparse.Namespace, extra: list[str]) -> tuple[float, float]:
    """(jobs/s, the platform's CPU ms per job: server + workers + PostgreSQL)."""
    argv = [sys.executable, str(_BENCH), "--quick", "--only", "throughput", "--bulk", "0"]
    argv += ["--throughput-jobs", str(args.jobs), "--metrics", metrics]
    argv += ["--scrape-interval", str(args.scrape_interval), *extra]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    rates = _RATE.findall(done.stdout)
    cpu = _CPU.findall(done.stdout)
    if done.returncode != 0 or not rates or not cpu:
        raise SystemExit(
            f"bench_platform.py --metrics {metrics} failed:\n{done.stdout}{done.stderr}"
        )
    return float(rates[0]), sum(float(ms) for ms in cpu[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--scrape-interval", type=float, default=1.0)
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    print(
        f"{args.pairs} pairs (+1 warm-up) of {args.jobs} `true` jobs; scrape every "
        f"{args.scrape_interval:g} s when on"
    )
    run("on", args, extra)
    run("off", args, extra)
    rows = []
    for index in range(1, args.pairs + 1):
        (on, on_cpu), (off, off_cpu) = run("on", args, extra), run("off", args, extra)
        rows.append((on, off, on / off, on_cpu, off_cpu, on_cpu / off_cpu))
        print(
            f"  pair {index}: jobs/s on {on:5.0f} off {off:5.0f} on/off {on / off:.3f}   "
            f"CPU ms/job on {on_cpu:.3f} off {off_cpu:.3f} on/off {on_cpu / off_cpu:.3f}"
        )

    def median(column: int) -> float:
        return statistics.median(row[column] for row in rows)

    def spread(column: int) -> str:
        values = [row[column] for row in rows]
        return f"min {min(values):.3f}, max {max(values):.3f}"

    print(
        f"median jobs/s: on {median(0):.0f}, off {median(1):.0f}; median of the pairs' "
        f"on/off {median(2):.3f} ({spread(2)})"
    )
    print(
        f"median CPU ms per job (server + workers + PostgreSQL): on {median(3):.3f}, off "
        f"{median(4):.3f}; median of the pairs' on/off {median(5):.3f} ({spread(5)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
