"""Part 1 of bench_scale.py: does dispatch cost grow with the queue's depth?

For each depth: a fresh platform with no worker, `depth` `true` jobs queued with
QueueJobs, then K real workers started. Measured from the database (the first
assigned_at, the n-th finished_at) and from the server's "dispatch cycle" log lines:

- jobs/s over the first `first` completions (from the first assignment), at every depth;
- jobs/s over a window of `window` completions after those (steady state, the queue
  still deep), and over the whole run when the depth is at most `whole_max`;
- the dispatcher's cycle time (median, p95) over the same spans, and jobs per cycle;
- server and PostgreSQL CPU per job over the first completions.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from bench_platform_processes import CpuMeter, Platform
from scale_common import Db, cpu_delta, cycle_stats, dispatch_cycles, platform, queue_bulk
from scale_probe import probe_dispatch, probe_text

from hodei.client import HodeiClient

logger = logging.getLogger(__name__)

#: Poll period of the completion count: short enough to sample the CPU meter close to
#: the window's edges, long enough not to load the database being measured.
_POLL = 0.25


async def _wait_finished(
    db: Db, target: int, marks: list[int], meter: CpuMeter, limit_s: float
) -> dict[int, tuple[int, dict[str, float]]]:
    """Poll until `target` jobs finished; at the first poll past each mark, the count
    and a CPU sample (so CPU per job uses the count seen, not the mark)."""
    samples: dict[int, tuple[int, dict[str, float]]] = {}
    deadline = time.monotonic() + limit_s
    while True:
        done = await db.finished()
        for mark in marks:
            if mark not in samples and done >= mark:
                samples[mark] = (done, meter.sample())
        if done >= target:
            return samples
        if time.monotonic() > deadline:
            raise SystemExit(f"queue depth: only {done}/{target} jobs finished in {limit_s:.0f} s")
        await asyncio.sleep(_POLL)


async def _stop_workers(plat: Platform) -> None:
    for proc in plat.worker_procs:
        proc.send_signal(signal.SIGTERM)
    for proc in plat.worker_procs:
        await asyncio.to_thread(proc.wait, 30)


async def _measure(plat: Platform, depth: int, args: Any) -> dict[str, Any]:
    first = args.first
    window = args.window if depth >= first + args.window else 0
    whole = depth <= args.whole_max
    target = depth if whole else first + window
    async with HodeiClient(plat.address, deadline=60, token=plat.token) as client:
        await plat.wait_ready(client)
        seconds, _ = await queue_bulk(client, depth, ["true"], "scale-depth")
    db = await Db.open(plat)
    try:
        queued = int(await db.value("SELECT count(*) FROM job_queue"))
        print(
            f"    queued {depth:,} jobs in {seconds:.1f} s ({depth / seconds:,.0f} jobs/s, "
            f"QueueJobs of 1,000); job_queue holds {queued:,}"
        )
        if args.analyze:
            # Fresh statistics, as autovacuum would give them (its naptime is a minute):
            # tells a plan chosen on stale statistics from a cost that grows anyway.
            await db.conn.execute("ANALYZE jobs, job_queue")
            print("    ANALYZE jobs, job_queue (--analyze)")
        url = plat.pg.get_uri("hodei")
        probe_before = await probe_dispatch(url, args.workers, args.slots)
        print(f"    before the workers start, {probe_text(probe_before)}")
        meter = CpuMeter.begin(plat)
        plat.add_workers(args.workers)
        marks = [first] + ([first + window] if window else [])
        samples = await _wait_finished(db, target, marks, meter, args.timeout)
        t0 = await db.first_assigned_at()
        f_first = await db.nth_finished_at(first)
        f_end = await db.nth_finished_at(target)
        f_window = await db.nth_finished_at(first + window) if window else f_end
        left = int(await db.value("SELECT count(*) FROM job_queue"))
        probe_after = None
        if left > 1000:
            # Again after thousands of jobs went through, the queue still deep (dead
            # rows, maybe autovacuum's ANALYZE by then); the workers stopped first, so
            # that the figure is the statement's, not the busy machine's.
            await _stop_workers(plat)
            probe_after = await probe_dispatch(url, args.workers, args.slots)
    finally:
        await db.close()
    cycles = dispatch_cycles(plat.workdir / "server.log")
    seen, at_first = samples[first]
    cpu = cpu_delta(meter, at_first)
    out: dict[str, Any] = {
        "depth": depth,
        "queued_per_s": depth / seconds,
        "analyzed": args.analyze,
        "probe_before": probe_before,
        "probe_after": probe_after,
        "queue_left": left,
        "first": first,
        "first_jobs_per_s": first / (f_first - t0),
        "first_dispatch": cycle_stats(cycles, t0, f_first),
        # Workers' CPU includes their start (imports, Register): ~1 s for the pair.
        "first_cpu_ms_per_job": {k: v * 1000 / seen for k, v in cpu.items()},
    }
    if window:
        out["window"] = window
        out["window_jobs_per_s"] = window / (f_window - f_first)
        out["window_dispatch"] = cycle_stats(cycles, f_first, f_window)
        seen_w, at_window = samples[first + window]
        cpu_w = {k: at_window[k] - at_first[k] for k in at_first}
        out["window_cpu_ms_per_job"] = {k: v * 1000 / (seen_w - seen) for k, v in cpu_w.items()}
    if whole:
        out["whole_jobs_per_s"] = depth / (f_end - t0)
        out["whole_dispatch"] = cycle_stats(cycles, t0, f_end)
    _print(out)
    return out


def _dispatch_text(stats: dict[str, float]) -> str:
    return (
        f"dispatch cycle p50 {stats['ms_p50']:6.2f} ms, p95 {stats['ms_p95']:6.2f} ms "
        f"({stats['cycles']:.0f} cycles, {stats['jobs_per_cycle']:.0f} jobs/cycle p50, "
        f"{stats['ms_per_job']:.3f} ms/job)"
    )


def _print(out: dict[str, Any]) -> None:
    cpu = out["first_cpu_ms_per_job"]
    print(
        f"    first {out['first']:,} completions: {out['first_jobs_per_s']:6.0f} jobs/s; "
        f"{_dispatch_text(out['first_dispatch'])}"
    )
    print(
        f"      CPU per job: server {cpu['server']:.3f} ms, postgres {cpu['postgres']:.3f} ms, "
        f"workers {cpu['workers']:.3f} ms (with their start-up)"
    )
    if "window" in out:
        cpu = out["window_cpu_ms_per_job"]
        print(
            f"    next {out['window']:,} completions: {out['window_jobs_per_s']:6.0f} jobs/s; "
            f"{_dispatch_text(out['window_dispatch'])}"
        )
        print(
            f"      CPU per job: server {cpu['server']:.3f} ms, postgres "
            f"{cpu['postgres']:.3f} ms, workers {cpu['workers']:.3f} ms"
        )
    if out["probe_after"]:
        print(
            f"    {out['queue_left']:,} still queued, workers stopped, "
            f"{probe_text(out['probe_after'])}"
        )
    if "whole_jobs_per_s" in out:
        print(
            f"    whole run ({out['depth']:,}): {out['whole_jobs_per_s']:6.0f} jobs/s; "
            f"{_dispatch_text(out['whole_dispatch'])}"
        )


def run(args: Any) -> dict[str, Any]:
    """Every depth in turn, each on a fresh platform; the 100k/2k-style ratios of the
    deepest over the shallowest."""
    print(
        f"\n[1] queue depth: `true` jobs queued before {args.workers} workers x {args.slots} "
        f"slots start (real worker processes)"
    )
    # The same first-N span at every depth, so that the ratio compares like with like.
    args.first = min(args.first, *args.depths)
    results = []
    for depth in args.depths:
        print(f"  depth {depth:,}:")
        with platform(0, args.slots, args.keep) as plat:
            results.append(asyncio.run(_measure(plat, depth, args)))
    low, high = results[0], results[-1]
    ratios = {
        "statement_p50": high["probe_before"]["dispatch_jobs_ms_p50"]
        / low["probe_before"]["dispatch_jobs_ms_p50"],
        "jobs_per_s": high["first_jobs_per_s"] / low["first_jobs_per_s"],
        "postgres_cpu_per_job": high["first_cpu_ms_per_job"]["postgres"]
        / low["first_cpu_ms_per_job"]["postgres"],
        "dispatch_p50": high["first_dispatch"]["ms_p50"] / low["first_dispatch"]["ms_p50"],
        "dispatch_p95": high["first_dispatch"]["ms_p95"] / low["first_dispatch"]["ms_p95"],
    }
    print(
        f"  ratio depth {high['depth']:,} / {low['depth']:,} (first {low['first']:,} "
        f"completions): jobs/s {ratios['jobs_per_s']:.2f}, dispatch cycle p50 "
        f"{ratios['dispatch_p50']:.2f}, p95 {ratios['dispatch_p95']:.2f}, PostgreSQL CPU per "
        f"job {ratios['postgres_cpu_per_job']:.2f}; dispatch_jobs "
        f"statement alone p50 {ratios['statement_p50']:.2f} (the worse plan at each depth)"
    )
    return {"depths": results, "ratio_deepest_over_shallowest": ratios}
