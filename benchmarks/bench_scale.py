"""Scale benchmark (issue 16): a script that prints figures (not a test).

    .venv/bin/python benchmarks/bench_scale.py [--quick] [--only depth fleet logs]
        [--json FILE]

Each part runs on its own fresh platform (embedded PostgreSQL, a server process,
hodei.client), on 127.0.0.1:

1. queue depth (scale_depth.py): 2,000, 20,000 and 100,000 `true` jobs queued (QueueJobs)
   before 2 real workers x 16 slots start; jobs/s over the first 2,000 completions, over
   the next 3,000, and over the whole run up to 20,000; the dispatcher's cycle time
   (median, p95) from its log lines; the ratio deepest / shallowest. Dispatch cost must
   not grow with the queue's depth.
2. 200 connected workers (scale_fleet.py): fake workers speaking the real WorkerStream
   protocol from one process (fake_workers.py), 1 slot each; the server's CPU per
   connected worker when idle (heartbeats only), dispatch jobs/s and CPU per job.
3. 50 log-heavy jobs at once (scale_logs.py): `seq 20000` each on 2 workers x 25 slots;
   lines/s persisted and the server's RSS before / peak / after.

`--quick` shrinks every part (~2 min in all); a summary table ends the output.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import scale_depth
import scale_fleet
import scale_logs

logger = logging.getLogger(__name__)

PARTS = ("depth", "fleet", "logs")


def _summary(results: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    depth = results.get("depth")
    if depth:
        for d in depth["depths"]:
            first, disp = d["first"], d["first_dispatch"]
            text = (
                f"{d['first_jobs_per_s']:.0f} jobs/s (first {first:,}), PostgreSQL "
                f"{d['first_cpu_ms_per_job']['postgres']:.2f} ms/job; dispatch cycle p50 "
                f"{disp['ms_p50']:.2f} ms, p95 {disp['ms_p95']:.2f} ms, "
                f"{disp['jobs_per_cycle']:.0f} jobs/cycle"
            )
            if "window_jobs_per_s" in d:
                w = d["window_dispatch"]
                text += (
                    f"; next {d['window']:,}: {d['window_jobs_per_s']:.0f} jobs/s, "
                    f"p50 {w['ms_p50']:.2f} / p95 {w['ms_p95']:.2f} ms"
                )
            if "whole_jobs_per_s" in d:
                text += f"; whole run {d['whole_jobs_per_s']:.0f} jobs/s"
            probe = d["probe_before"]
            text += (
                f"; dispatch_jobs alone p50 {probe['main_custom_ms_p50']:.2f} / "
                f"{probe['main_generic_ms_p50']:.2f} ms (custom / generic plan, "
                f"{probe['jobs_claimed']:.0f} jobs)"
            )
            rows.append((f"queue depth {d['depth']:,}", text))
        r = depth["ratio_deepest_over_shallowest"]
        lo, hi = depth["depths"][0]["depth"], depth["depths"][-1]["depth"]
        rows.append(
            (
                f"ratio {hi:,} / {lo:,}",
                f"jobs/s {r['jobs_per_s']:.2f}, dispatch cycle p50 {r['dispatch_p50']:.2f}, "
                f"p95 {r['dispatch_p95']:.2f}; statement alone p50 {r['statement_p50']:.2f}; "
                f"PostgreSQL CPU per job {r['postgres_cpu_per_job']:.2f}",
            )
        )
    fleet = results.get("fleet")
    if fleet:
        per, d = fleet["per_worker_ms_per_s"], fleet["dispatch"]
        rows.append(
            (
                f"{fleet['workers']} idle workers",
                f"server {per['server']:.3f} ms/s per worker, postgres {per['postgres']:.3f} "
                f"ms/s ({fleet['server_ms_per_heartbeat']:.3f} ms server CPU per heartbeat)",
            )
        )
        cpu = d["cpu_ms_per_job"]
        rows.append(
            (
                f"{fleet['workers']} workers x 1 slot",
                f"{d['jobs_per_s']:.0f} jobs/s; per job server {cpu['server']:.3f} ms, "
                f"postgres {cpu['postgres']:.3f} ms (fake fleet {cpu['fleet']:.3f} ms)",
            )
        )
    logs = results.get("logs")
    if logs:
        rss = logs["rss_mib"]
        rows.append(
            (
                f"{logs['jobs']} jobs x {logs['lines_per_job']:,} lines",
                f"{logs['lines_per_s']:,.0f} lines/s persisted; server RSS "
                f"{rss['before']:.0f} / {rss['peak_sampled']:.0f} / {rss['after']:.0f} MiB "
                f"(before / peak / after)",
            )
        )
    return rows


def _print_summary(rows: list[tuple[str, str]]) -> None:
    width = max((len(name) for name, _ in rows), default=0)
    print("\nsummary")
    for name, text in rows:
        print(f"  {name:<{width}}  {text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run of every part")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep each part's work dir (logs)")
    parser.add_argument("--timeout", type=float, default=900, help="per measurement, s")
    part = parser.add_argument_group("1. queue depth")
    part.add_argument("--depths", type=int, nargs="+", help="default 2000 20000 100000")
    part.add_argument("--first", type=int, help="completions measured at every depth (2000)")
    part.add_argument("--window", type=int, help="completions after the first ones (3000)")
    part.add_argument(
        "--whole-max", type=int, default=20_000, help="run to the end up to this depth"
    )
    part.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE jobs and job_queue once they are queued, before the workers start",
    )
    part.add_argument("--workers", type=int, default=2, help="real workers (parts 1 and 3)")
    part.add_argument("--slots", type=int, default=16, help="slots per worker in part 1")
    part = parser.add_argument_group("2. fake workers")
    part.add_argument("--fleet", type=int, default=200, help="fake workers, 1 slot each")
    part.add_argument("--fleet-procs", type=int, default=1, help="processes they run in")
    part.add_argument("--fleet-jobs", type=int, help="jobs dispatched to them (2000)")
    part.add_argument("--idle", type=float, help="seconds of each idle measurement (30)")
    part.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    part.add_argument("--run-ms", type=float, default=2.0, help="fake JobStarted -> JobResult")
    part = parser.add_argument_group("3. log-heavy jobs")
    part.add_argument("--log-jobs", type=int, default=50)
    part.add_argument("--log-lines", type=int, help="lines per job (20000)")
    args = parser.parse_args()
    quick = args.quick
    args.depths = sorted(args.depths or ([1000, 5000] if quick else [2000, 20_000, 100_000]))
    args.first = args.first or (1000 if quick else 2000)
    args.window = args.window or (1000 if quick else 3000)
    args.fleet_jobs = args.fleet_jobs or (500 if quick else 2000)
    args.idle = args.idle or (10.0 if quick else 30.0)
    args.log_lines = args.log_lines or (4000 if quick else 20_000)

    print(
        f"bench_scale: {', '.join(args.only)}; {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
    )
    runners = {"depth": scale_depth.run, "fleet": scale_fleet.run, "logs": scale_logs.run}
    results: dict[str, Any] = {}
    try:
        for name in PARTS:
            if name in args.only:
                results[name] = runners[name](args)
    except KeyboardInterrupt:
        return 130
    finally:
        _print_summary(_summary(results))
        print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if args.json:
            args.json.write_text(json.dumps({"args": vars(args), **results}, indent=2, default=str))
            print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
