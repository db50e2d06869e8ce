"""Platform benchmark: a script that prints figures (not a test).

    .venv/bin/python benchmarks/bench_platform.py [--quick] [--workers K] [--slots S]
        [--metrics on|off]

On the embedded PostgreSQL (a fresh data dir), a real server process and K real
worker processes on 127.0.0.1, driven through hodei.client.HodeiClient:

1. submit -> RUNNING latency on an idle platform: N sequential `true` jobs, each
   measured from just before the client's QueueJob call to the job's started_at
   (server clock; same host), with the created/assigned/started breakdown;
2. throughput: M `true` jobs submitted by concurrent clients, jobs/s from the
   first QueueJob to the last finished_at;
3. log throughput: one job printing L lines (`seq L`): lines/s until the last
   line is persisted (GetLogs sees it), and separately until a SubscribeLogs
   client has received every line; the server's RSS (VmRSS, VmHWM) before/after.

Targets (issue 2, 2-core machine): p50 submit->RUNNING <= 10 ms; >= 500 jobs/s;
>= 200,000 log lines/s with server RSS growth < 100 MB.

Default: 2 workers x 16 slots. Throughput is jobs in flight over each job's turnaround
(Little's law). A `true` job lives ~1 ms, but its slot stays taken for its whole
bookkeeping round (assign, RunJob, spawn, JobStarted, result, four transactions): ~31 ms
at 500 jobs/s on 2 cores. Covering that needs 500 x 0.031 = ~16 jobs in flight, so
2 x 8 slots measures the turnaround (it reaches 500 jobs/s in some runs only) and
2 x 16 the platform's capacity. `--slots 8` gives the former (RESULTS.md has both).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_platform_processes import CpuMeter, Platform

from harness.processes import memory_kib
from hodei.client import HodeiClient, JobView
from hodei.domain.jobs import JobState

# ---- measurements ----------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


async def wait_final(client: HodeiClient, job_id: str) -> JobView:
    # A live-only log stream ends when the job ends: no polling on the idle platform.
    async for _ in client.subscribe_log_batches(job_id, include_history=False):
        pass
    job = await client.get_job(job_id)
    while not job.is_final:
        await asyncio.sleep(0.01)
        job = await client.get_job(job_id)
    return job


#: queue_job's idempotency key argument: {} lets the client make one per call (its
#: default), {"idempotency_key": ""} sends none (--no-keys, the cost without keys).
KEYS: dict[str, Any] = {}


async def bench_latency(
    client: HodeiClient, platform: Platform, jobs: int, gap: float
) -> dict[str, float]:
    to_running: list[float] = []
    to_created: list[float] = []
    to_assigned: list[float] = []
    assigned_to_started: list[float] = []
    round_trip: list[float] = []
    meter = CpuMeter.begin(platform)
    for _ in range(jobs):
        t0 = time.time()
        job = await client.queue_job(["true"], labels={"bench": "latency"}, **KEYS)
        done = await wait_final(client, job.id)
        t_end = time.time()
        assert done.state == JobState.SUCCEEDED, done
        assert done.created_at and done.assigned_at and done.started_at
        to_created.append(done.created_at.timestamp() - t0)
        to_assigned.append(done.assigned_at.timestamp() - done.created_at.timestamp())
        assigned_to_started.append(done.started_at.timestamp() - done.assigned_at.timestamp())
        to_running.append(done.started_at.timestamp() - t0)
        round_trip.append(t_end - t0)
        await asyncio.sleep(gap)  # idle between jobs
    print(
        f"\n[1] submit -> RUNNING latency, {jobs} sequential `true` jobs on an idle platform "
        f"({gap * 1000:.0f} ms between jobs)"
    )
    print(
        f"    submit -> RUNNING    p50 {ms(pct(to_running, 50))}   p99 {ms(pct(to_running, 99))}"
        f"   (target p50 <= 10 ms: {'MET' if pct(to_running, 50) <= 0.010 else 'MISSED'})"
    )
    print(f"      submit -> created  p50 {ms(pct(to_created, 50))}   p99 {ms(pct(to_created, 99))}")
    print(
        f"      created -> assigned p50 {ms(pct(to_assigned, 50))}  p99 {ms(pct(to_assigned, 99))}"
    )
    print(
        f"      assigned -> started p50 {ms(pct(assigned_to_started, 50))}  p99 "
        f"{ms(pct(assigned_to_started, 99))}"
    )
    print(
        f"    submit -> client saw the end p50 {ms(pct(round_trip, 50))}  p99 "
        f"{ms(pct(round_trip, 99))}"
    )
    meter.report(jobs, "job")
    return {"p50": pct(to_running, 50), "p99": pct(to_running, 99)}


async def bench_throughput(
    client: HodeiClient, platform: Platform, jobs: int, submitters: int, bulk: int = 0
) -> float:
    """`bulk` > 0: QueueJobs calls of `bulk` jobs (4 concurrent callers) instead of one
    QueueJob per job from `submitters` concurrent callers."""
    workers, slots = platform.workers, platform.slots
    meter = CpuMeter.begin(platform)
    before = (await client.get_queue()).job_counts.get("SUCCEEDED", 0)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(jobs):
        queue.put_nowait(i)

    async def submit() -> None:
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await client.queue_job(["true"], labels={"bench": "throughput"}, **KEYS)

    async def submit_bulk() -> None:
        while True:
            taken = 0
            while taken < bulk and not queue.empty():
                queue.get_nowait()
                taken += 1
            if not taken:
                return
            await client.queue_jobs(
                [{"command": ["true"], "labels": {"bench": "throughput"}}] * taken, **KEYS
            )

    t0 = time.time()
    if bulk:
        await asyncio.gather(*(submit_bulk() for _ in range(4)))
    else:
        await asyncio.gather(*(submit() for _ in range(submitters)))
    submitted = time.time()
    while True:
        counts = (await client.get_queue()).job_counts
        done = counts.get("SUCCEEDED", 0) - before
        other = sum(counts.get(s, 0) for s in ("FAILED", "TIMED_OUT", "CANCELLED"))
        if done >= jobs:
            break
        if time.time() - t0 > 600:
            raise SystemExit(f"throughput: only {done}/{jobs} succeeded in 600 s ({other} other)")
        await asyncio.sleep(0.2)
    recent = await client.list_jobs([JobState.SUCCEEDED], limit=1, labels={"bench": "throughput"})
    last_finished = recent[0].finished_at.timestamp() if recent and recent[0].finished_at else 0
    elapsed = max(last_finished, submitted) - t0
    rate = jobs / elapsed
    how = (
        f"QueueJobs calls of {bulk} jobs, 4 concurrent callers"
        if bulk
        else f"{submitters} concurrent QueueJob callers"
    )
    print(f"\n[2] throughput: {jobs} `true` jobs, {how}, {workers} workers x {slots} slots")
    print(f"    submitted in {submitted - t0:6.2f} s  ({jobs / (submitted - t0):7.0f} jobs/s)")
    print(
        f"    all finished in {elapsed:6.2f} s  -> {rate:7.0f} jobs/s  "
        f"(target >= 500: {'MET' if rate >= 500 else 'MISSED'}, ratio {rate / 500:.2f})"
    )
    meter.report(jobs, "job")
    print_table_stats(platform, jobs)
    return rate


def print_table_stats(platform: Platform, jobs: int) -> None:
    """Where PostgreSQL's work goes: rows written and scanned per job, by table."""
    import psycopg

    with psycopg.connect(platform.pg.get_uri("hodei")) as conn:
        rows = conn.execute(
            "SELECT relname, seq_scan, seq_tup_read, idx_scan, n_tup_ins, n_tup_upd, n_tup_del "
            "FROM pg_stat_user_tables ORDER BY seq_tup_read + n_tup_ins + n_tup_upd DESC"
        ).fetchall()
        commits = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    print(f"    PostgreSQL per job (whole run so far; {commits[0] if commits else '?'} commits):")
    print(
        f"      {'table':<16}{'seq scans':>10}{'rows seq-read':>15}{'idx scans':>11}"
        f"{'ins':>7}{'upd':>7}{'del':>7}"
    )
    for name, seq, seq_rows, idx, ins, upd, dele in rows:
        print(
            f"      {name:<16}{seq / jobs:>10.2f}{seq_rows / jobs:>15.1f}"
            f"{(idx or 0) / jobs:>11.2f}"
            f"{ins / jobs:>7.2f}{upd / jobs:>7.2f}{dele / jobs:>7.2f}"
        )


async def last_line_persisted(client: HodeiClient, job_id: str, lines: int) -> float:
    while True:
        page = await client.get_logs(job_id, after_sequence=lines - 1, limit=1)
        if page.lines:
            return time.time()
        await asyncio.sleep(0.05)


async def bench_logs(client: HodeiClient, platform: Platform, lines: int) -> dict[str, float]:
    print(f"\n[3] log throughput: one job printing {lines:,} lines (`seq {lines}`)")
    assert platform.server is not None
    server_pid = platform.server.pid
    meter = CpuMeter.begin(platform)
    rss0 = memory_kib(server_pid)
    job = await client.queue_job(["seq", str(lines)], labels={"bench": "logs"})
    persisted_at = await last_line_persisted(client, job.id, lines)
    rss1 = memory_kib(server_pid)
    persist_meter_end = meter.sample()
    done = await client.get_job(job.id)
    while not done.is_final:
        await asyncio.sleep(0.05)
        done = await client.get_job(job.id)
    assert done.started_at is not None
    started = done.started_at.timestamp()
    persist_rate = lines / (persisted_at - started)
    print(
        f"    persisted: {persisted_at - started:6.2f} s from RUNNING -> {persist_rate:9,.0f} "
        f"lines/s (target >= 200,000: {'MET' if persist_rate >= 200_000 else 'MISSED'}, "
        f"ratio {persist_rate / 200_000:.2f})"
    )
    meter.report(lines / 1e6, "1M lines", scale=1, label="s", end=persist_meter_end)
    meter = CpuMeter.begin(platform)

    # The same again with a live subscriber from the start: lines/s delivered to a client.
    job = await client.queue_job(["seq", str(lines)], labels={"bench": "logs"})
    t0 = time.time()
    received = 0
    last = 0
    async for batch in client.subscribe_log_batches(job.id):
        received += len(batch)
        last = batch[-1].sequence
    t_end = time.time()
    assert received == lines and last == lines, (received, last)
    sub_rate = lines / (t_end - t0)
    rss2 = memory_kib(server_pid)
    print(
        f"    subscribed: {t_end - t0:6.2f} s from QueueJob to the last line received -> "
        f"{sub_rate:9,.0f} lines/s (ratio {sub_rate / 200_000:.2f})"
    )
    meter.report(lines / 1e6, "1M lines (persisted and subscribed)", scale=1, label="s")
    growth = (rss2["VmRSS"] - rss0["VmRSS"]) / 1024
    peak = (rss2["VmHWM"] - rss0["VmRSS"]) / 1024
    print(
        f"    server RSS: before {rss0['VmRSS'] / 1024:6.1f} MiB, after persist "
        f"{rss1['VmRSS'] / 1024:6.1f} MiB, after subscribe {rss2['VmRSS'] / 1024:6.1f} MiB; "
        f"peak {rss2['VmHWM'] / 1024:6.1f} MiB"
    )
    print(
        f"    RSS growth {growth:+.1f} MiB, peak over start {peak:+.1f} MiB "
        f"(target < 100 MB: {'MET' if max(growth, peak) < 100 else 'MISSED'})"
    )
    return {"persist_rate": persist_rate, "subscribe_rate": sub_rate, "rss_growth_mib": growth}


async def main_async(args: argparse.Namespace, platform: Platform) -> None:
    assert platform.server is not None
    async with HodeiClient(platform.address, deadline=30, token=platform.token) as client:
        await platform.wait_ready(client)
        info = await client.server_info()
        print(
            f"server {info.version} at {platform.address} (pid {platform.server.pid}), "
            f"{platform.workers} workers x {platform.slots} slots, embedded PostgreSQL in "
            f"{platform.workdir / 'pgdata'}, {os.cpu_count()} CPUs"
        )
        if platform.server_env:
            settings = " ".join(f"{k}={v}" for k, v in platform.server_env.items())
            print(f"server settings: {settings}")
        for _ in range(5):  # warm up connections, caches and the worker's first spawn
            await wait_final(client, (await client.queue_job(["true"])).id)
        scraper = (
            asyncio.create_task(scrape_loop(platform.metrics_ports, args.scrape_interval))
            if platform.metrics
            else None
        )
        if "latency" in args.only:
            for gap in args.gaps:
                await bench_latency(client, platform, args.latency_jobs, gap)
        if "throughput" in args.only:
            await bench_throughput(client, platform, args.throughput_jobs, args.submitters)
            if args.bulk:
                await bench_throughput(
                    client, platform, args.throughput_jobs, args.submitters, args.bulk
                )
        if "logs" in args.only:
            await bench_logs(client, platform, args.log_lines)
        if scraper is not None:
            scraper.cancel()
            await asyncio.gather(scraper, return_exceptions=True)
            print(f"\nmetrics: on, {SCRAPES[0]} scrapes of {len(platform.metrics_ports)} endpoints")
        else:
            print("\nmetrics: off (HODEI_METRICS=false)")


#: Scrapes made (a list: the loop task and main_async share it).
SCRAPES = [0]


async def scrape_loop(ports: list[int], interval: float) -> None:
    """Scrape every /metrics every `interval` seconds while the benchmark runs, as a
    Prometheus would (its default is every 15 s: 1 s here makes the cost visible)."""
    import urllib.request

    def fetch(port: int) -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            reply.read()

    while True:
        for port in ports:
            await asyncio.to_thread(fetch, port)
            SCRAPES[0] += 1
        await asyncio.sleep(interval)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (~30 s)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--slots",
        type=int,
        default=16,
        help="slots per worker (default 16: see the module docstring)",
    )
    parser.add_argument("--submitters", type=int, default=32)
    parser.add_argument(
        "--bulk",
        type=int,
        default=100,
        help="also run the throughput phase with QueueJobs calls of this "
        "many jobs (0: only single QueueJob calls)",
    )
    parser.add_argument("--latency-jobs", type=int)
    parser.add_argument("--throughput-jobs", type=int)
    parser.add_argument("--log-lines", type=int)
    parser.add_argument(
        "--gaps",
        type=float,
        nargs="+",
        default=[0.02],
        help="seconds between latency jobs, one run each (default 0.02)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=["latency", "throughput", "logs"],
        choices=["latency", "throughput", "logs"],
    )
    parser.add_argument(
        "--no-keys",
        action="store_true",
        help="submit without idempotency keys (default: one per call, as the client does)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    parser.add_argument(
        "--metrics",
        choices=["on", "off"],
        default="on",
        help="on (default, scraped every --scrape-interval s) or off (HODEI_METRICS=false): "
        "the metrics overhead A/B",
    )
    parser.add_argument("--scrape-interval", type=float, default=1.0, metavar="SECONDS")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a HODEI_ setting for the server, e.g. HODEI_EAGER_DISPATCH=false",
    )
    args = parser.parse_args()
    args.latency_jobs = args.latency_jobs or (50 if args.quick else 200)
    args.throughput_jobs = args.throughput_jobs or (300 if args.quick else 2000)
    args.log_lines = args.log_lines or (100_000 if args.quick else 1_000_000)
    if args.no_keys:
        KEYS["idempotency_key"] = ""

    workdir = Path(tempfile.mkdtemp(prefix="hodei-bench-"))
    server_env = dict(item.split("=", 1) for item in args.server_env)
    if any(not name.startswith("HODEI_") for name in server_env):
        parser.error("--server-env takes HODEI_ settings (NAME=VALUE)")
    platform = Platform(
        workdir, args.workers, args.slots, server_env=server_env, metrics=args.metrics == "on"
    )
    try:
        platform.start()
        asyncio.run(main_async(args, platform))
    except KeyboardInterrupt:
        return 130
    finally:
        platform.stop()
        if args.keep:
            print(f"\nwork dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
