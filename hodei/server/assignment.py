"""Giving queued jobs to workers: claiming them for free slots (the dispatcher's
cycle), and sending RunJob for the assigned ones (the dispatcher's and QueueJob's
eager dispatch, hodei.server.submission)."""

from __future__ import annotations

import asyncio
import logging
import uuid

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from hodei.db.connector import Database
from hodei.domain.events import EventType
from hodei.domain.jobs import JobState
from hodei.errors import FailedPrecondition
from hodei.log_context import job_context
from hodei.metrics import server_metrics
from hodei.server.models import AttemptRef, JobRecord, RunCommand
from hodei.server.secret_box import SecretBox
from hodei.server.sessions import SessionRegistry
from hodei.server.transitions import JobTransitions
from hodei.settings import Settings
from hodei.tracing import context_of, job_attributes, traceparent

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class Assigner:
    def __init__(self, db: Database, settings: Settings, server_id: str) -> None:
        self.db = db
        self.settings = settings
        self.server_id = server_id
        #: Set when this process queued a job (hodei.server.submission): wakes the local
        #: dispatcher at once (the NOTIFY, for the other servers, takes a round trip more).
        self.queued = asyncio.Event()
        #: Other loops that want to hear of a queued job (the scaler).
        self.on_queued: list[asyncio.Event] = []

    def note_queued(self) -> None:
        self.queued.set()
        for event in self.on_queued:
            event.set()

    async def claim_and_assign(
        self, worker_ids: list[uuid.UUID], labelled: list[uuid.UUID] | None = None
    ) -> list[JobRecord]:
        """Claim queued jobs for the free slots of these workers (READY, connected here)
        and assign them: one statement, so one round trip and one commit per cycle
        (queries.sql `dispatch_jobs`). Returns the assigned jobs in dealing order.
        `labelled`: those of them that have labels, the only ones a job with a selector
        can go to (None: any of them); with none, the selector statement is skipped (a
        round trip per cycle)."""
        if not worker_ids:
            return []
        async with self.db.connection() as tx:
            params = {
                "server_id": self.server_id,
                "ids": worker_ids,
                "limit": self.settings.dispatcher.batch_size,
                "ack_timeout": self.settings.dispatcher.ack_timeout,
                "dispatch_actor": f"dispatcher:{self.server_id}",
                "assigned_event": str(EventType.JOB_ASSIGNED),
                "busy_event": str(EventType.WORKER_BUSY),
            }
            rows = await tx.all("dispatch_jobs", params)
            selectable = worker_ids if labelled is None else labelled
            # Jobs with a selector, one per statement: each needs a matching worker.
            while selectable and len(rows) < self.settings.dispatcher.batch_size:
                selected = await tx.all("dispatch_selected_jobs", {**params, "ids": selectable})
                if not selected:
                    break
                rows += selected
        server_metrics().assigned((r["enqueued_at"], r["assigned_at"]) for r in rows)
        return [JobRecord.from_row(r) for r in rows]


class RunPusher:
    """Pushes RunJob down each assigned job's worker stream; a job whose stream
    closed since its assignment goes back to the queue."""

    def __init__(
        self,
        transitions: JobTransitions,
        registry: SessionRegistry,
        box: SecretBox,
        tracing: bool = False,
    ) -> None:
        self.transitions = transitions
        self.registry = registry
        self.box = box
        #: Make a dispatch span for each traced job (settings.tracing.enabled).
        self.tracing = tracing
        #: Jobs sent by eager dispatch and not yet counted in server_status (the
        #: dispatcher loop adds them to its own counts when it records a cycle).
        self.eager_unrecorded = 0

    async def push(self, assigned: list[JobRecord]) -> int:
        """Returns how many RunJob commands were queued on open streams."""
        pushed = 0
        for job in assigned:
            with job_context(**job.log_fields):
                pushed += await self._push_one(job)
        return pushed

    async def _push_one(self, job: JobRecord) -> int:
        try:
            # Decrypted here only, for the RunJob; never logged.
            secret_env = self.box.open(job.sealed_secret_env)
        except FailedPrecondition as err:
            # No retry can do better: another attempt meets the same key.
            logger.error("job cannot run: %s", err, extra=job.log_fields)
            await self.transitions.force_final(job.id, JobState.FAILED, str(err), "dispatcher")
            return 0
        # A child of the enqueue span stored with the job (whichever server queued
        # it, however long ago); a job queued untraced gets none.
        span = (
            tracer.start_span(
                "dispatch",
                context=context_of(job.trace_context),
                kind=SpanKind.PRODUCER,
                attributes=job_attributes(job.id, job.correlation_id, job.attempts, job.worker_id),
            )
            if self.tracing and job.trace_context
            else None
        )
        command = RunCommand(
            ref=AttemptRef(job.id, job.attempts),
            command=job.command,
            env=job.env,
            working_dir=job.working_dir,
            timeout_seconds=job.timeout_seconds or 0.0,
            correlation_id=job.correlation_id,
            secret_env=secret_env,
            trace_context=traceparent(span),
        )
        sent = self.registry.send(job.worker_id, command)
        if span is not None:
            if not sent:
                span.set_status(StatusCode.ERROR, "worker stream gone before RunJob")
            span.end()
        if sent:
            logger.debug("RunJob sent", extra=job.log_fields)
            return 1
        logger.warning("worker stream gone before RunJob; requeueing", extra=job.log_fields)
        await self.transitions.requeue(
            job.id, "worker stream closed before the job was sent", "dispatcher"
        )
        return 0
