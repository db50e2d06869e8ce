"""The worker's graceful stop, driven by hodei.worker.service on SIGINT/SIGTERM:
take no new jobs and let the running ones finish (`drain`), stop them when the grace
is over or at a second signal (`stop_jobs`: handed back to the server for a retry),
then wait until the server confirmed everything (`flush`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from hodei.worker.agent import WorkerAgent

logger = logging.getLogger(__name__)

#: Seconds, beyond the kill grace, to wait for stopped jobs to end.
_STOP_MARGIN = 3.0


async def wait_until(agent: WorkerAgent, predicate: Callable[[], bool], seconds: float) -> bool:
    """Re-check `predicate` at each change of the agent's attempts, for `seconds`."""
    changed = agent.wakeups.changed
    deadline = time.monotonic() + seconds
    while not predicate():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), left)
        except TimeoutError:
            return bool(predicate())
    return True


async def drain(agent: WorkerAgent, grace: float) -> None:
    """Take no new jobs; let running ones finish for `grace` seconds, then stop them."""
    agent.draining = True
    agent.give_back_waiting()  # never started: another worker can run them now
    if agent.running_count:
        logger.info(
            "waiting up to %.1f s for %d running job(s)",
            grace,
            agent.running_count,
            extra={"worker_id": agent.worker_id},
        )
    if not await wait_until(agent, lambda: agent.running_count == 0, grace):
        stop_jobs(agent, force=False)
        await wait_until(
            agent,
            lambda: agent.running_count == 0,
            agent.settings.worker.kill_grace + _STOP_MARGIN,
        )
    tasks = [a.task for a in agent.held if a.task is not None and a.running]
    for task in tasks:
        task.cancel()


def stop_jobs(agent: WorkerAgent, force: bool) -> None:
    """Stop every running job and hand it back to the server."""
    for att in agent.held:
        if att.running and att.process is not None:
            logger.warning(
                "stopping job: worker shutting down", extra=att.log_fields(agent.worker_id)
            )
            att.give_back = True
            att.process.cancel(force=force, reason="worker shut down")


async def flush(agent: WorkerAgent, seconds: float) -> bool:
    """Wait until the server persisted every result and every queued message was
    written (or `seconds` passed)."""
    done = await wait_until(agent, lambda: not agent.held and agent.all_written, seconds)
    if not done:
        logger.warning(
            "%d attempt(s) not confirmed by the server at shutdown",
            len(agent.held),
            extra={"worker_id": agent.worker_id},
        )
    return done
