"""Sending RunJob for assigned jobs, shared by the dispatcher loop and QueueJob's
eager dispatch (hodei.server.submission)."""

from __future__ import annotations

import logging

from hodei.server.jobs import JobService
from hodei.server.models import AttemptRef, JobRecord, RunCommand
from hodei.server.sessions import SessionRegistry

logger = logging.getLogger(__name__)


class RunPusher:
    """Pushes RunJob down each assigned job's worker stream; a job whose stream
    closed since its assignment goes back to the queue."""

    def __init__(self, jobs: JobService, registry: SessionRegistry) -> None:
        self.jobs = jobs
        self.registry = registry
        #: Jobs sent by eager dispatch and not yet counted in server_status (the
        #: dispatcher loop adds them to its own counts when it records a cycle).
        self.eager_unrecorded = 0

    async def push(self, assigned: list[JobRecord]) -> int:
        """Returns how many RunJob commands were queued on open streams."""
        pushed = 0
        for job in assigned:
            command = RunCommand(
                ref=AttemptRef(job.id, job.attempts),
                command=job.command,
                env=job.env,
                working_dir=job.working_dir,
                timeout_seconds=job.timeout_seconds or 0.0,
                correlation_id=job.correlation_id,
            )
            if self.registry.send(job.worker_id, command):
                pushed += 1
                logger.debug("RunJob sent", extra=job.log_fields)
                continue
            logger.warning("worker stream gone before RunJob; requeueing", extra=job.log_fields)
            await self.jobs.requeue(
                job.id, "worker stream closed before the job was sent", "dispatcher"
            )
        return pushed
