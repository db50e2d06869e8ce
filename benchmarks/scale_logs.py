"""Part 3 of bench_scale.py: many log-heavy jobs at once.

J jobs each printing L lines (`seq L`), queued in one QueueJobs call on K real workers
with enough slots for all of them. Measured: lines persisted per second (from the
QueueJobs call, and from the first job's start, to the moment the database holds every
line: `jobs.attempt_lines`, advanced by each stored batch, checked against a count of
`job_logs` rows at the end), CPU per million lines, and the server's RSS before, at its
peak (sampled every 0.1 s, and VmHWM), and a few seconds after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bench_platform_processes import CpuMeter, Platform
from scale_common import Db, cpu_delta, platform

from harness.processes import memory_kib
from harness.waits import wait_for_async
from hodei.client import HodeiClient

logger = logging.getLogger(__name__)

_SAMPLE = 0.1
#: How long after the last line the "after" RSS is read: the buffers of the burst are
#: released (or not) by then; glibc keeps freed arenas, which is what this shows.
_AFTER = 3.0


async def _measure(plat: Platform, args: Any) -> dict[str, Any]:
    jobs, lines = args.log_jobs, args.log_lines
    total = jobs * lines
    assert plat.server is not None
    pid = plat.server.pid
    async with HodeiClient(plat.address, deadline=60, token=plat.token) as client:
        await plat.wait_ready(client)
        warm = await client.queue_jobs([{"command": ["seq", "10"]}] * 4)
        db = await Db.open(plat)
        try:
            await wait_for_async("warm-up jobs", db.finished, lambda n: n >= len(warm), 60)
            await asyncio.sleep(1.0)
            rss0 = memory_kib(pid)
            meter = CpuMeter.begin(plat)
            t0 = time.time()
            queued = await client.queue_jobs(
                [{"command": ["seq", str(lines)], "labels": {"bench": "scale-logs"}}] * jobs
            )
            ids = [job.id for job in queued]
            peak_rss = rss0["VmRSS"]
            deadline = time.monotonic() + args.timeout
            while True:
                peak_rss = max(peak_rss, memory_kib(pid)["VmRSS"])
                stored = await db.value(
                    "SELECT coalesce(sum(attempt_lines), 0)::bigint "
                    "FROM jobs WHERE id = ANY(%s::uuid[])",
                    (ids,),
                )
                if stored >= total:
                    persisted_at = time.time()
                    cpu = cpu_delta(meter)
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"logs: {stored:,}/{total:,} lines stored in {args.timeout} s")
                await asyncio.sleep(_SAMPLE)
            await wait_for_async(
                "log jobs to finish",
                lambda: db.value(
                    "SELECT count(*) FROM jobs WHERE id = ANY(%s::uuid[]) "
                    "AND finished_at IS NOT NULL",
                    (ids,),
                ),
                lambda n: n >= jobs,
                args.timeout,
            )
            rows = await db.value(
                "SELECT count(*) FROM job_logs WHERE job_id = ANY(%s::uuid[])", (ids,)
            )
            first_start = await db.value(
                "SELECT extract(epoch FROM min(started_at))::float8 FROM jobs "
                "WHERE id = ANY(%s::uuid[])",
                (ids,),
            )
            states = await db.value(
                "SELECT json_object_agg(state, n) FROM (SELECT state, count(*) AS n FROM jobs "
                "WHERE id = ANY(%s::uuid[]) GROUP BY state) s",
                (ids,),
            )
        finally:
            await db.close()
        await asyncio.sleep(_AFTER)
        rss_after = memory_kib(pid)
    out = {
        "jobs": jobs,
        "lines_per_job": lines,
        "lines": total,
        "job_logs_rows": rows,
        "states": states,
        "seconds_from_queue": persisted_at - t0,
        "lines_per_s": total / (persisted_at - t0),
        "lines_per_s_from_first_start": total / (persisted_at - float(first_start)),
        "cpu_s_per_1m_lines": {k: v * 1e6 / total for k, v in cpu.items()},
        "rss_mib": {
            "before": rss0["VmRSS"] / 1024,
            "peak_sampled": peak_rss / 1024,
            "peak_vmhwm": rss_after["VmHWM"] / 1024,
            "after": rss_after["VmRSS"] / 1024,
        },
    }
    _print(out)
    return out


def _print(out: dict[str, Any]) -> None:
    rss, cpu = out["rss_mib"], out["cpu_s_per_1m_lines"]
    print(
        f"    {out['lines']:,} lines persisted in {out['seconds_from_queue']:.2f} s from "
        f"QueueJobs -> {out['lines_per_s']:,.0f} lines/s "
        f"({out['lines_per_s_from_first_start']:,.0f} from the first start); job_logs rows "
        f"{out['job_logs_rows']:,}; jobs {out['states']}"
    )
    print(
        f"    CPU per 1M lines: server {cpu['server']:.2f} s, postgres {cpu['postgres']:.2f} s, "
        f"workers {cpu['workers']:.2f} s"
    )
    print(
        f"    server RSS: before {rss['before']:.1f} MiB, peak {rss['peak_sampled']:.1f} MiB "
        f"sampled (VmHWM {rss['peak_vmhwm']:.1f}), after {rss['after']:.1f} MiB "
        f"({rss['after'] - rss['before']:+.1f}, peak {rss['peak_sampled'] - rss['before']:+.1f})"
    )


def run(args: Any) -> dict[str, Any]:
    slots = -(-args.log_jobs // args.workers)  # every job running at once
    print(
        f"\n[3] {args.log_jobs} log-heavy jobs at once (`seq {args.log_lines}` each), "
        f"{args.workers} workers x {slots} slots"
    )
    with platform(args.workers, slots, args.keep) as plat:
        return asyncio.run(_measure(plat, args))
