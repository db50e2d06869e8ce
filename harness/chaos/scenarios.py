"""The chaos scenarios. Each runs one trial on a ChaosPlatform and returns its Trial:
the fault comes from outside (SIGKILL, a stopped PostgreSQL, a second replica) while a
burst of ledger jobs flows, and the figures come from the tables and the ledger."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from harness.chaos.burst import Burst, Settled, account, settle
from harness.chaos.platform import ChaosPlatform
from harness.chaos.trial import Trial
from harness.waits import wait_for_async, wait_until_async

logger = logging.getLogger(__name__)

#: Submitted before the fault strikes: the burst is well under way, most of it is not.
FAULT_AT = 0.3


def _settle_within(platform: ChaosPlatform) -> float:
    # A job held by a worker that died waits out a miss window, then its retry.
    return 120.0 + 4 * platform.miss_window_s()


def _ledger(platform: ChaosPlatform, name: str) -> Burst:
    path = platform.run_dir / f"ledger-{name}-{time.monotonic_ns()}.txt"
    return Burst(addresses=[platform.address], ledger_path=path, count=0, api_token=platform.token)


def _fill(trial: Trial, settled: Settled, platform: ChaosPlatform) -> Trial:
    trial.jobs = settled.jobs
    trial.lost = settled.lost
    trial.duplicates = settled.duplicates
    trial.ran_twice = len(settled.ran_twice)
    trial.tracebacks = platform.new_tracebacks()
    if settled.ran_twice:
        trial.notes.append(f"ran twice: {', '.join(settled.ran_twice[:5])}")
    if settled.not_succeeded:
        trial.notes.append(f"not succeeded: {', '.join(settled.not_succeeded[:5])}")
    return trial


def _first_finish_after(settled: Settled, moment: float) -> float | None:
    after = [t for t in settled.finished if t >= moment]
    return min(after) - moment if after else None


async def worker_kill(platform: ChaosPlatform, jobs: int = 16, job_seconds: float = 2.0) -> Trial:
    """A worker SIGKILLed while it runs jobs; a replacement starts. Its jobs must run
    again elsewhere (their process died with it) and everything else exactly once."""
    trial = Trial("worker SIGKILL mid-job", platform.profile)
    platform.new_tracebacks()
    burst = _ledger(platform, "worker-kill")
    burst.count, burst.job_seconds = jobs, job_seconds
    await burst.run()
    running = await wait_for_async(
        "a worker running jobs",
        platform.running_by_worker_pid,
        lambda by_pid: any(by_pid.values()),
        30,
    )
    workers = {info.pid: info for info in platform.processes("worker")}
    pid = max((p for p in running if p in workers), key=lambda p: len(running[p]))
    held = running[pid]
    killed_at = time.time()
    await platform.kill(workers[pid])
    await platform.start_worker()
    await settle(burst, platform.database_url, _settle_within(platform))
    settled = await account(burst, platform.database_url, killed_workers={pid})
    by_id = await _finished_at(platform, held)
    trial.recovery_s = [max(by_id.values()) - killed_at] if by_id else []
    return _fill(trial, settled, platform)


async def _finished_at(platform: ChaosPlatform, job_ids: list[str]) -> dict[str, float]:
    import psycopg

    async with await psycopg.AsyncConnection.connect(platform.database_url) as conn:
        rows = await (
            await conn.execute(
                "SELECT id::text, extract(epoch FROM finished_at) FROM jobs"
                " WHERE id = ANY(%s::uuid[]) AND state = 'SUCCEEDED'",
                (job_ids,),
            )
        ).fetchall()
    return {job_id: float(at) for job_id, at in rows if at is not None}


async def _burst_with_fault(
    platform: ChaosPlatform,
    trial: Trial,
    jobs: int,
    fault: Callable[[], Awaitable[None]],
    addresses: list[str] | None = None,
) -> Trial:
    """Submit `jobs` while `fault` strikes once FAULT_AT of them are in; the fault
    returns once the platform's part is back (restarted, database up)."""
    platform.new_tracebacks()
    burst = _ledger(platform, trial.scenario.split()[0].lower())
    burst.count = jobs
    if addresses:
        burst.addresses = addresses
    submitting = asyncio.create_task(burst.run(), name="chaos-burst")
    await wait_until_async(
        f"{int(jobs * FAULT_AT)} jobs submitted",
        lambda: burst.submitted >= jobs * FAULT_AT or submitting.done(),
        120,
        poll_s=0.01,
    )
    await fault()
    back_at = time.time()
    await submitting
    await settle(burst, platform.database_url, _settle_within(platform))
    settled = await account(burst, platform.database_url, killed_workers=set())
    recovery = _first_finish_after(settled, back_at)
    trial.recovery_s = [] if recovery is None else [recovery]
    if burst.refused:
        trial.notes.append(f"{len(burst.refused)} submissions given up by the client")
    return _fill(trial, settled, platform)


async def server_kill(platform: ChaosPlatform, jobs: int = 1000) -> Trial:
    """The server SIGKILLed in the middle of a burst and restarted on its port."""
    trial = Trial("server SIGKILL under a burst", platform.profile)

    async def fault() -> None:
        server = platform.processes("server")[0]
        port = int(platform.address.rsplit(":", 1)[1])
        await platform.kill(server)
        await asyncio.sleep(0.5)  # a process supervisor's restart delay
        await platform.start_server(port)

    return await _burst_with_fault(platform, trial, jobs, fault)


async def database_restart(platform: ChaosPlatform, jobs: int = 1000) -> Trial:
    """The embedded PostgreSQL stopped (fast shutdown) and started again at once."""
    trial = Trial("PostgreSQL restart", platform.profile)

    async def fault() -> None:
        await platform.stop_database()
        await platform.start_database()

    return await _burst_with_fault(platform, trial, jobs, fault)


async def database_outage(
    platform: ChaosPlatform, jobs: int = 1000, seconds: float = 10.0
) -> Trial:
    """The embedded PostgreSQL stopped for `seconds`, then started."""
    trial = Trial(f"PostgreSQL down {seconds:g} s", platform.profile)

    async def fault() -> None:
        await platform.stop_database()
        await asyncio.sleep(seconds)
        await platform.start_database()

    return await _burst_with_fault(platform, trial, jobs, fault)


async def two_replicas(platform: ChaosPlatform, jobs: int = 1000) -> Trial:
    """A second server on the same database with a worker of its own; clients spread
    over both. Nothing may be assigned twice."""
    trial = Trial("two server replicas", platform.profile)
    replica, replica_address = await platform.start_server(name="server-b")
    worker = await platform.start_worker(address=replica_address, wait=True)

    async def no_fault() -> None:
        return None

    try:
        await _burst_with_fault(
            platform, trial, jobs, no_fault, addresses=[platform.address, replica_address]
        )
        trial.recovery_s = []  # nothing broke: there is nothing to recover from
        return trial
    finally:
        await platform.terminate(worker)
        await platform.terminate(replica)
