"""Hodei against procrastinate, side by side, on one PostgreSQL (issue 16).

    pip install -e '.[bench]'
    .venv/bin/python benchmarks/peers/compare.py [--jobs 2000] [--rows 1x4,2x2,...]
        [--repeat R] [--database-url URL] [--hodei-env HODEI_X=V ...] [--json FILE]

For each row (K worker processes x S slots each), on a fresh database per side: N
`true` jobs are queued before any worker process exists, then the K workers are
spawned; the figure is jobs/s from the spawn to the last job's success as PostgreSQL
recorded it. Then the no-queue ceiling (one asyncio process spawning `true` at
concurrency 8), the idle latency of both, and the goals of issue 16 as PASS/FAIL lines.
A report: it exits 0 whatever the figures, 1 when a run broke, 2 on bad arguments or a
missing procrastinate. benchmarks/peers/README.md has the definitions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Run as a script: its own directory is on sys.path, the platform benchmark's helpers
# (bench_platform_processes.Platform, ...) are one level up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hodei_side
from peers_report import SIDES, Comparison, Latency, Row
from shared_pg import RunBroke, SharedPostgres

logger = logging.getLogger(__name__)

DEFAULT_ROWS = "1x4,2x2,1x8,2x4,1x16,2x8,1x32,2x16"
_CEILING = Path(__file__).resolve().parent / "ceiling.py"


def parse_shape(text: str) -> tuple[int, int]:
    workers, _, slots = text.strip().partition("x")
    try:
        shape = int(workers), int(slots)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want KxS, e.g. 2x8") from None
    if min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: K and S must be >= 1")
    return shape


def parse_env(items: list[str], prefix: str, parser: argparse.ArgumentParser) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith(prefix):
            parser.error(f"{item!r}: want {prefix}NAME=VALUE")
        env[name] = value
    return env


def side_order(index: int) -> tuple[str, ...]:
    """Alternate which side goes first, so neither always runs on a warmer machine."""
    return SIDES if index % 2 == 0 else SIDES[::-1]


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def run_ceiling(jobs: int, concurrency: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(_CEILING), "--jobs", str(jobs), "--concurrency", str(concurrency)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RunBroke(f"ceiling: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run_all(args: argparse.Namespace, pg: SharedPostgres, workdir: Path) -> Comparison:
    import procrastinate
    import procrastinate_side

    facts: dict[str, Any] = {
        "postgres": pg.describe(),
        "procrastinate_version": procrastinate.__version__,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_before": load_average(),
        "hodei_env": args.hodei_env,
        "procrastinate_env": args.procrastinate_env,
    }
    facts_pg = facts["postgres"]
    print(
        f"PostgreSQL {facts_pg['server_version']} ({facts_pg['server']}), fsync "
        f"{facts_pg['fsync']}, synchronous_commit {facts_pg['synchronous_commit']}; "
        f"procrastinate {facts['procrastinate_version']}, Python {facts['python']}, "
        f"{facts['cpus']} CPUs, load average {facts['load_before']}"
    )
    print(
        f"Hodei settings: defaults{''.join(f' {k}={v}' for k, v in args.hodei_env.items())}; "
        f"procrastinate: defaults"
        f"{''.join(f' {k}={v}' for k, v in args.procrastinate_env.items())}",
        flush=True,
    )
    result = Comparison(args.jobs, args.repeat, facts, [Row(k, s) for k, s in args.rows])
    throughput = {
        "hodei": lambda d, k, s: hodei_side.throughput(pg, d, k, s, args.jobs, args.hodei_env),
        "procrastinate": lambda d, k, s: procrastinate_side.throughput(
            pg, d, k, s, args.jobs, args.procrastinate_env
        ),
    }
    for index in range(args.repeat):
        if args.ceiling_concurrency:
            run = run_ceiling(args.jobs, args.ceiling_concurrency)
            result.ceiling_runs.append(run)
            print(f"ceiling run {index + 1}: {run['jobs_per_s']:.1f} jobs/s", flush=True)
    for row in result.rows:
        for index in range(args.repeat):
            for side in side_order(index):
                run_dir = workdir / f"{side}-{row.shape}-{index + 1}"
                run_dir.mkdir()
                run = throughput[side](run_dir, row.workers, row.slots)
                row.runs[side].append(run)
                print(
                    f"{row.shape} run {index + 1} {side:<13} {run['jobs_per_s']:8.1f} jobs/s "
                    f"({run['seconds']:.2f} s, first job started after "
                    f"{run['first_start_s']:.2f} s)",
                    flush=True,
                )
    if args.latency_jobs:
        k, s = args.latency_shape
        result.latency = Latency(f"{k}x{s}")
        for index in range(args.repeat):
            for side in side_order(index):
                run_dir = workdir / f"{side}-latency-{index + 1}"
                run_dir.mkdir()
                if side == "hodei":
                    samples = hodei_side.latency(
                        pg, run_dir, k, s, args.latency_jobs, 5, args.latency_gap, args.hodei_env
                    )
                else:
                    samples, spawned = procrastinate_side.latency(
                        pg,
                        run_dir,
                        k,
                        s,
                        args.latency_jobs,
                        5,
                        args.latency_gap,
                        args.procrastinate_env,
                    )
                    result.latency.runs["procrastinate_spawned"].append(spawned)
                result.latency.runs[side].append(samples)
                print(
                    f"latency run {index + 1} {side:<13} p50 "
                    f"{sorted(samples)[len(samples) // 2] * 1000:.2f} ms",
                    flush=True,
                )
    facts["load_after"] = load_average()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per throughput run")
    parser.add_argument(
        "--rows",
        default=DEFAULT_ROWS,
        help=f"comma-separated KxS shapes: K worker processes x S slots (default {DEFAULT_ROWS})",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per row and side (median)")
    parser.add_argument(
        "--database-url",
        help="another PostgreSQL server (a database to connect to for CREATE DATABASE), "
        "e.g. postgresql://postgres@127.0.0.1:5432/postgres; default: an embedded one",
    )
    parser.add_argument(
        "--hodei-env",
        action="append",
        default=[],
        metavar="HODEI_NAME=VALUE",
        help="a setting for Hodei's server and workers (repeatable; default: none)",
    )
    parser.add_argument(
        "--procrastinate-env",
        action="append",
        default=[],
        metavar="PROCRASTINATE_NAME=VALUE",
        help="a variable for procrastinate's worker CLI, e.g. PROCRASTINATE_LOG_LEVEL=warning",
    )
    parser.add_argument("--latency-jobs", type=int, default=200, help="0: no latency runs")
    parser.add_argument("--latency-shape", type=parse_shape, default=(1, 4), metavar="KxS")
    parser.add_argument(
        "--latency-gap", type=float, default=0.02, help="seconds idle between latency jobs"
    )
    parser.add_argument(
        "--ceiling-concurrency", type=int, default=8, help="0: no ceiling row (default 8)"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (process logs)")
    args = parser.parse_args()
    try:
        args.rows = [parse_shape(text) for text in args.rows.split(",") if text.strip()]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if not args.rows or args.jobs < 1 or args.repeat < 1:
        parser.error("want at least one row, --jobs >= 1 and --repeat >= 1")
    args.hodei_env = parse_env(args.hodei_env, "HODEI_", parser)
    args.procrastinate_env = parse_env(args.procrastinate_env, "PROCRASTINATE_", parser)
    if importlib.util.find_spec("procrastinate") is None:
        print("compare.py needs procrastinate: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    workdir = Path(tempfile.mkdtemp(prefix="hodei-peers-"))
    pg: SharedPostgres | None = None
    try:
        pg = SharedPostgres(args.database_url) if args.database_url else None
        pg = pg or SharedPostgres.embedded(workdir)
        result = run_all(args, pg, workdir)
    except RunBroke as exc:
        print(f"\nthe run broke: {exc} (logs in {workdir})", file=sys.stderr)
        args.keep = True
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if pg is not None:
            pg.stop()
        if args.keep:
            print(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(result.render())
    print(
        f"\nload average before {result.facts['load_before']}, after {result.facts['load_after']}"
    )
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
