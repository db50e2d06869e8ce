"""Job creation: QueueJob (one job, possibly assigned at once) and QueueJobs (many).

Eager dispatch: a job submitted to a server that has a READY worker with a free slot,
while nothing waits in the queue, is assigned in the statement that creates it and its
RunJob is sent before the QueueJob answer: no NOTIFY round trip, no separate dispatcher
transaction (Temporal's "eager workflow start" makes the same trade). The
submit -> RUNNING p50 went from 12.7-14.4 ms to 10.2-11.4 ms (benchmarks/RESULTS.md).
Off with the dispatcher (a job then waits in the queue, as the diagnostics expect) or
with settings.dispatcher.eager = false (HODEI_EAGER_DISPATCH).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from hodei.db.connector import Database
from hodei.domain.events import EventType
from hodei.domain.jobs import JobSpec, JobState, validate_spec
from hodei.errors import InvalidArgument
from hodei.server.assignment import Assigner, RunPusher
from hodei.server.events import Event, job_event
from hodei.server.models import JobRecord
from hodei.server.sessions import SessionRegistry
from hodei.settings import Settings

logger = logging.getLogger(__name__)

#: Jobs one QueueJobs call may queue.
MAX_BULK_JOBS = 1000


class Submission:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        assigner: Assigner,
        registry: SessionRegistry,
        pusher: RunPusher,
    ) -> None:
        self.settings = settings
        self.db = db
        self.server_id = assigner.server_id
        self.eager = settings.dispatcher.enabled and settings.dispatcher.eager
        self.assigner = assigner
        self.registry = registry
        self.pusher = pusher

    async def submit(self, command: list[str], **spec: Any) -> JobRecord:
        """QueueJob. `spec`: queue()'s keyword arguments."""
        workers = self.registry.worker_ids() if self.eager else []
        job = await self.queue(command, assign_to=workers, **spec)
        if job.state == JobState.ASSIGNED:
            self.pusher.eager_unrecorded += await self.pusher.push([job])
            # One turn of the loop: the worker stream's writer (woken by the push) hands
            # the RunJob to gRPC before this answer is built and sent (~0.5 ms sooner).
            await asyncio.sleep(0)
        return job

    async def queue(
        self,
        command: list[str],
        *,
        assign_to: Sequence[uuid.UUID] = (),
        correlation_id: str = "",
        **spec: Any,
    ) -> JobRecord:
        """Queue a job; or, when one of `assign_to` (workers whose stream is open on this
        server) has a free slot and no job is waiting, assign it to that worker in the
        same statement (eager dispatch): the caller then sends the RunJob."""
        job_id, valid, created = self._new_job(command, correlation_id, **spec)
        correlation_id = created.correlation_id
        # One statement: job, queue row (or assignment), events, outbox rows and the
        # dispatchers' NOTIFY.
        async with self.db.connection() as tx:
            row = await tx.one(
                "queue_job",
                {
                    "id": job_id,
                    "name": valid.name,
                    "command": list(valid.command),
                    "env": Jsonb(valid.env),
                    "working_dir": valid.working_dir,
                    "timeout_seconds": valid.timeout_seconds,
                    "labels": Jsonb(valid.labels),
                    "max_attempts": valid.max_attempts,
                    "correlation_id": correlation_id,
                    "event_type": str(created.type),
                    "actor": created.actor,
                    "payload": Jsonb(created.payload),
                    "worker_ids": list(assign_to),
                    "server_id": self.server_id,
                    "ack_timeout": self.settings.dispatcher.ack_timeout,
                    "dispatch_actor": f"dispatcher:{self.server_id}",
                    "assigned_event": str(EventType.JOB_ASSIGNED),
                    "busy_event": str(EventType.WORKER_BUSY),
                },
            )
        assert row is not None
        job = JobRecord.from_row(row)
        if job.state == JobState.PENDING:
            self.assigner.queued.set()
            logger.info("job queued", extra=job.log_fields)
        else:
            logger.info("job queued and assigned at once (eager dispatch)", extra=job.log_fields)
        return job

    async def submit_many(self, specs: Sequence[dict[str, Any]]) -> list[JobRecord]:
        """Queue many jobs in one statement (its own transaction), in order: all or
        none. Each of `specs` holds queue()'s keyword arguments (`command` included,
        `assign_to` not); an invalid one is named by its index."""
        if not specs:
            raise InvalidArgument("no jobs to queue")
        if len(specs) > MAX_BULK_JOBS:
            raise InvalidArgument(f"{len(specs)} jobs in one call; at most {MAX_BULK_JOBS}")
        prepared = []
        for index, args in enumerate(specs):
            try:
                prepared.append(self._new_job(**args))
            except InvalidArgument as err:
                raise InvalidArgument(f"jobs[{index}]: {err}") from None
        async with self.db.connection() as tx:
            rows = await tx.all(
                "queue_job_batch",
                {
                    "ids": [job_id for job_id, _, _ in prepared],
                    "names": [spec.name for _, spec, _ in prepared],
                    "commands": [Jsonb(list(spec.command)) for _, spec, _ in prepared],
                    "envs": [Jsonb(spec.env) for _, spec, _ in prepared],
                    "working_dirs": [spec.working_dir for _, spec, _ in prepared],
                    "timeouts": [spec.timeout_seconds for _, spec, _ in prepared],
                    "labels": [Jsonb(spec.labels) for _, spec, _ in prepared],
                    "max_attempts": [spec.max_attempts for _, spec, _ in prepared],
                    "correlation_ids": [ev.correlation_id for _, _, ev in prepared],
                    "payloads": [Jsonb(ev.payload) for _, _, ev in prepared],
                    "event_type": str(EventType.JOB_CREATED),
                    "actor": "client",
                },
            )
        self.assigner.queued.set()
        jobs = [JobRecord.from_row(r) for r in rows]
        logger.info("%d jobs queued in one call", len(jobs), extra={"count": len(jobs)})
        return jobs

    def _new_job(
        self, command: list[str], correlation_id: str = "", **spec: Any
    ) -> tuple[uuid.UUID, JobSpec, Event]:
        """A validated spec (hodei.domain.jobs.validate_spec's keyword arguments: env,
        working_dir, timeout_seconds, max_attempts, name, labels), the new job's id and
        its JobCreated event."""
        valid = validate_spec(
            command, **spec, default_max_attempts=self.settings.server.default_max_attempts
        )
        if len(correlation_id) > 200:
            raise InvalidArgument("correlation_id is longer than 200 characters")
        job_id = uuid.uuid4()
        created = job_event(
            EventType.JOB_CREATED,
            job_id,
            "client",
            correlation_id or job_id.hex,
            state=str(JobState.PENDING),
            name=valid.name,
            max_attempts=valid.max_attempts,
        )
        return job_id, valid, created
