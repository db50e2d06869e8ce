"""Part 2 of bench_scale.py: what a server pays for many connected workers.

A platform with no real worker; N fake workers (fake_workers.py, in one process or a
few) connect over the real WorkerStream protocol with 1 slot each. Measured:

- idle: the server's and PostgreSQL's CPU over a period with the fleet connected and
  sending heartbeats only, minus the same period with no worker: CPU ms per second per
  worker, and per heartbeat;
- dispatch: `true` jobs queued with QueueJobs while the N x 1 slots are free: jobs/s
  (from the first QueueJobs call to the last finished_at) and CPU per job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from bench_platform_processes import CpuMeter, Platform
from scale_common import Db, cpu_delta, platform, queue_bulk

from harness.processes import cpu_seconds
from harness.waits import wait_for_async
from hodei.client import HodeiClient

logger = logging.getLogger(__name__)

_FAKE = Path(__file__).with_name("fake_workers.py")


class Fleet:
    """The fake-worker processes and their line protocol (fake_workers.py)."""

    def __init__(self, procs: list[asyncio.subprocess.Process]) -> None:
        self.procs = procs

    @classmethod
    async def start(cls, plat: Platform, count: int, processes: int, run_ms: float) -> Fleet:
        procs = []
        for index in range(processes):
            share = count // processes + (1 if index < count % processes else 0)
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(_FAKE),
                    "--server",
                    plat.address,
                    "--count",
                    str(share),
                    "--prefix",
                    f"fake{index + 1}",
                    "--run-ms",
                    str(run_ms),
                    env={**plat.env, "HODEI_TOKEN": plat.worker_token},
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
        return cls(procs)

    async def _each(self, command: str | None, event: str, limit_s: float) -> dict[str, float]:
        """Send `command` to every process, read each one's `event` line, add them up."""
        total: dict[str, float] = {}
        for proc in self.procs:
            assert proc.stdin is not None and proc.stdout is not None
            if command is not None:
                proc.stdin.write(f"{command}\n".encode())
                await proc.stdin.drain()
            while True:
                line = await asyncio.wait_for(proc.stdout.readline(), limit_s)
                if not line:
                    raise SystemExit(f"fake workers (pid {proc.pid}) exited before {event!r}")
                record = json.loads(line)
                if record.pop("event") == event:
                    break
            for key, value in record.items():
                total[key] = total.get(key, 0) + value
        return total

    async def connected(self, limit_s: float) -> dict[str, float]:
        return await self._each(None, "connected", limit_s)

    async def stats(self) -> dict[str, float]:
        return await self._each("stats", "stats", 30)

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    async def stop(self) -> dict[str, float]:
        try:
            return await self._each("stop", "stopped", 60)
        finally:
            for proc in self.procs:
                if proc.returncode is None:
                    try:
                        await asyncio.wait_for(proc.wait(), 10)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()


async def _idle_cpu(plat: Platform, seconds: float) -> dict[str, float]:
    meter = CpuMeter.begin(plat)
    await asyncio.sleep(seconds)
    return cpu_delta(meter)


async def _connected_workers(client: HodeiClient) -> int:
    return sum(1 for w in await client.list_workers() if w.connected)


async def _dispatch(
    client: HodeiClient, plat: Platform, fleet: Fleet, jobs: int, limit_s: float
) -> dict[str, Any]:
    db = await Db.open(plat)
    try:
        before = await db.finished()
        meter = CpuMeter.begin(plat)
        fleet_cpu = fleet.cpu()
        t0 = time.time()
        submit_s, _ = await queue_bulk(client, jobs, ["true"], "scale-fleet", chunk=100)
        await wait_for_async(
            f"{jobs} jobs to finish on the fake workers",
            db.finished,
            lambda done: done - before >= jobs,
            timeout_s=limit_s,
            poll_s=0.2,
        )
        cpu = cpu_delta(meter)
        cpu["fleet"] = fleet.cpu() - fleet_cpu
        last = await db.nth_finished_at(before + jobs)
    finally:
        await db.close()
    return {
        "jobs": jobs,
        "submitted_per_s": jobs / submit_s,
        "jobs_per_s": jobs / (last - t0),
        "cpu_ms_per_job": {k: v * 1000 / jobs for k, v in cpu.items()},
    }


async def _measure(plat: Platform, args: Any) -> dict[str, Any]:
    n = args.fleet
    async with HodeiClient(plat.address, deadline=60, token=plat.token) as client:
        await plat.wait_ready(client)
        await asyncio.sleep(args.settle)  # the server's start-up work done
        base = await _idle_cpu(plat, args.idle)
        fleet = await Fleet.start(plat, n, args.fleet_procs, args.run_ms)
        try:
            began = time.perf_counter()
            await fleet.connected(limit_s=180)
            connect_s = time.perf_counter() - began
            connected = await _connected_workers(client)
            print(f"    {connected} fake workers connected in {connect_s:.1f} s")
            await asyncio.sleep(args.settle)
            hb0 = await fleet.stats()
            fleet_cpu = fleet.cpu()
            idle = await _idle_cpu(plat, args.idle)
            fleet_cpu = fleet.cpu() - fleet_cpu
            heartbeats = (await fleet.stats())["heartbeats"] - hb0["heartbeats"]
            dispatch = await _dispatch(client, plat, fleet, args.fleet_jobs, args.timeout)
        finally:
            final = await fleet.stop()
    per_worker = {k: (idle[k] - base[k]) * 1000 / args.idle / n for k in ("server", "postgres")}
    out = {
        "workers": n,
        "connected": connected,
        "connect_s": connect_s,
        "idle_s": args.idle,
        "idle_cpu_ms_per_s": {k: v * 1000 / args.idle for k, v in idle.items()},
        "no_worker_cpu_ms_per_s": {k: v * 1000 / args.idle for k, v in base.items()},
        "per_worker_ms_per_s": per_worker,
        "heartbeats": heartbeats,
        "server_ms_per_heartbeat": (idle["server"] - base["server"]) * 1000 / max(heartbeats, 1),
        "fleet_idle_ms_per_s": fleet_cpu * 1000 / args.idle,
        "dispatch": dispatch,
        "fleet_final": final,
    }
    _print(out)
    return out


def _print(out: dict[str, Any]) -> None:
    idle, base, per = (
        out["idle_cpu_ms_per_s"],
        out["no_worker_cpu_ms_per_s"],
        out["per_worker_ms_per_s"],
    )
    print(
        f"    idle {out['idle_s']:.0f} s: server {idle['server']:.1f} ms/s with the fleet, "
        f"{base['server']:.1f} ms/s with no worker; postgres {idle['postgres']:.1f} / "
        f"{base['postgres']:.1f} ms/s"
    )
    print(
        f"    per connected worker: server {per['server']:.3f} ms/s, postgres "
        f"{per['postgres']:.3f} ms/s; {out['heartbeats']:.0f} heartbeats, server "
        f"{out['server_ms_per_heartbeat']:.3f} ms each; the fleet process "
        f"{out['fleet_idle_ms_per_s']:.1f} ms/s"
    )
    final = out["fleet_final"]
    if final.get("errors") or final.get("rejected"):
        print(
            f"    fleet: {final['errors']:.0f} stream errors, {final['rejected']:.0f} messages "
            f"rejected by the server"
        )
    d = out["dispatch"]
    cpu = d["cpu_ms_per_job"]
    print(
        f"    dispatch: {d['jobs']:,} `true` jobs over {out['workers']} x 1 slot: "
        f"{d['jobs_per_s']:.0f} jobs/s (submitted at {d['submitted_per_s']:,.0f}/s)"
    )
    print(
        f"      CPU per job: server {cpu['server']:.3f} ms, postgres {cpu['postgres']:.3f} ms, "
        f"fake fleet {cpu['fleet']:.3f} ms, bench client {cpu['client']:.3f} ms"
    )


def run(args: Any) -> dict[str, Any]:
    print(
        f"\n[2] {args.fleet} fake workers x 1 slot ({args.fleet_procs} process(es), "
        f"fake_workers.py), no real worker"
    )
    with platform(0, 1, args.keep) as plat:
        return asyncio.run(_measure(plat, args))
