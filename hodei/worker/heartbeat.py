"""The worker's heartbeat: a Heartbeat message every `heartbeat_interval` (the
server's value once registered), whose period restarts on each new stream since its
Hello counts as one. Run by hodei.worker.service as the supervised `heartbeat` task."""

from __future__ import annotations

import asyncio

from hodei.worker.agent import WorkerAgent


async def heartbeat_loop(agent: WorkerAgent, stop: asyncio.Event) -> None:
    """Until `stop` is set: a Heartbeat each period without a new stream."""
    stream_opened = agent.wakeups.stream_opened
    stopping = asyncio.create_task(stop.wait(), name="heartbeat-stop")
    try:
        while not stop.is_set():
            stream_opened.clear()
            opened = asyncio.create_task(stream_opened.wait(), name="heartbeat-kick")
            done, _ = await asyncio.wait(
                {stopping, opened},
                timeout=agent.heartbeat_interval,
                return_when=asyncio.FIRST_COMPLETED,
            )
            opened.cancel()
            if not done:
                agent.send(agent.heartbeat_message())
    finally:
        stopping.cancel()
