"""QueueJob's service: queue a job, or assign it at once (eager dispatch).

A job submitted to a server that has a READY worker with a free slot, while nothing
waits in the queue, is assigned in the statement that creates it and its RunJob is
sent before the QueueJob answer: no NOTIFY round trip, no separate dispatcher
transaction (Temporal's "eager workflow start" makes the same trade). The
submit -> RUNNING p50 went from 12.7-14.4 ms to 10.2-11.4 ms (benchmarks/RESULTS.md).
Off with the dispatcher (a job then waits in the queue, as the diagnostics expect) or
with settings.eager_dispatch = false.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hodei.domain.jobs import JobState
from hodei.server.jobs import JobService
from hodei.server.models import JobRecord
from hodei.server.runs import RunPusher
from hodei.server.sessions import SessionRegistry
from hodei.settings import Settings


class Submission:
    def __init__(
        self, settings: Settings, jobs: JobService, registry: SessionRegistry, pusher: RunPusher
    ) -> None:
        self.eager = settings.dispatcher_enabled and settings.eager_dispatch
        self.jobs = jobs
        self.registry = registry
        self.pusher = pusher

    async def submit(self, **spec: Any) -> JobRecord:
        """`spec`: JobService.queue_job's keyword arguments."""
        workers = self.registry.worker_ids() if self.eager else []
        job = await self.jobs.queue_job(**spec, assign_to=workers)
        if job.state == JobState.ASSIGNED:
            self.pusher.eager_unrecorded += await self.pusher.push([job])
            # One turn of the loop: the worker stream's writer (woken by the push) hands
            # the RunJob to gRPC before this answer is built and sent (~0.5 ms sooner).
            await asyncio.sleep(0)
        return job

    async def submit_many(self, specs: list[dict[str, Any]]) -> list[JobRecord]:
        """QueueJobs: all queued (the dispatcher assigns them in batches), or none."""
        return await self.jobs.queue_jobs(specs)
