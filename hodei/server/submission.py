"""Job creation: QueueJob (one job, possibly assigned at once) and QueueJobs (many).

Eager dispatch: a job submitted to a server that has a READY worker with a free slot,
while nothing waits in the queue, is assigned in the statement that creates it and its
RunJob is sent before the QueueJob answer: no NOTIFY round trip, no separate dispatcher
transaction (Temporal's "eager workflow start" makes the same trade). The
submit -> RUNNING p50 went from 12.7-14.4 ms to 10.2-11.4 ms (benchmarks/RESULTS.md).
Off with the dispatcher (a job then waits in the queue, as the diagnostics expect) or
with settings.dispatcher.eager = false (HODEI_EAGER_DISPATCH).

Idempotent submission: a call with an idempotency key writes the key (with the hash
of its specs) in the statement that creates its jobs. A call whose key is taken
creates nothing, writes no event, and answers the jobs the key names when its specs
hash the same, or AlreadyExists when they do not (hodei.domain.idempotency).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from psycopg.types.json import Jsonb

from hodei.db.connector import Database
from hodei.domain.events import EventType
from hodei.domain.idempotency import SubmissionKind, request_hash, validate_key
from hodei.domain.jobs import JobSpec, JobState, validate_spec
from hodei.errors import AlreadyExists, FailedPrecondition, InvalidArgument, Unavailable
from hodei.log_context import job_context
from hodei.metrics import server_metrics
from hodei.server.assignment import Assigner, RunPusher
from hodei.server.events import Event, job_event
from hodei.server.models import JobRecord
from hodei.server.secret_box import NO_KEY, SecretBox
from hodei.server.sessions import SessionRegistry
from hodei.settings import Settings
from hodei.tracing import ATTEMPT, WORKER_ID, job_attributes, maybe_span, traceparent

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

#: Jobs one QueueJobs call may queue.
MAX_BULK_JOBS = 1000
# A keyed call whose key is taken reads the winner; if that key was forgotten
# meanwhile (its jobs pruned) it tries its own insert again. Twice more is plenty:
# each round either creates the jobs or finds a key another call just wrote.
_KEY_ROUNDS = 3


class Submission:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        assigner: Assigner,
        registry: SessionRegistry,
        pusher: RunPusher,
        box: SecretBox,
    ) -> None:
        self.settings = settings
        self.box = box
        self.db = db
        self.server_id = assigner.server_id
        self.eager = settings.dispatcher.enabled and settings.dispatcher.eager
        self.assigner = assigner
        self.registry = registry
        self.pusher = pusher
        self.tracing = settings.tracing.enabled

    async def submit(self, command: list[str], **spec: Any) -> JobRecord:
        """QueueJob. `spec`: queue()'s keyword arguments."""
        workers = self.registry.worker_ids() if self.eager else []
        job, created = await self._queue(command, assign_to=workers, **spec)
        if created and job.state == JobState.ASSIGNED:
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
        idempotency_key: str = "",
        owner: uuid.UUID | None = None,
        **spec: Any,
    ) -> JobRecord:
        """Queue a job; or, when one of `assign_to` (workers whose stream is open on this
        server) has a free slot and no job is waiting, assign it to that worker in the
        same statement (eager dispatch): the caller then sends the RunJob. With an
        idempotency key already used for the same spec: the job that call created."""
        job, _ = await self._queue(
            command,
            assign_to=assign_to,
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
            owner=owner,
            **spec,
        )
        return job

    async def _queue(
        self,
        command: list[str],
        *,
        assign_to: Sequence[uuid.UUID] = (),
        correlation_id: str = "",
        idempotency_key: str = "",
        owner: uuid.UUID | None = None,
        **spec: Any,
    ) -> tuple[JobRecord, bool]:
        """queue(), and whether this call created the job (False: a replay)."""
        key = validate_key(idempotency_key)
        job_id, valid, created = self._new_job(command, correlation_id, **spec)
        correlation_id = created.correlation_id
        digest = request_hash("job", [valid]) if key else ""
        attributes = job_attributes(job_id, correlation_id) if self.tracing else None
        with (
            job_context(job_id, correlation_id),
            maybe_span(tracer, self.tracing, "enqueue", attributes=attributes) as span,
        ):
            # The row keeps this span's context: the job's dispatch continues its trace.
            context = traceparent(span)
            for _ in range(_KEY_ROUNDS):
                row = await self._insert_job(
                    job_id, valid, created, assign_to, key, digest, owner, context
                )
                if row is not None:
                    break
                replayed = await self._replay(key, digest, "job", owner)
                if replayed is not None:
                    if span is not None:
                        span.set_attribute("hodei.replayed", True)
                    return replayed[0], False
            else:
                raise self._unsettled(key)
            job = JobRecord.from_row(row)
            if span is not None and job.worker_id is not None:  # eager dispatch
                span.set_attributes({WORKER_ID: str(job.worker_id), ATTEMPT: job.attempts})
            server_metrics().submitted()
            if job.state == JobState.PENDING:
                self.assigner.note_queued()
                logger.info("job queued", extra=job.log_fields)
            else:
                server_metrics().assigned([(job.created_at, job.assigned_at)])
                logger.info(
                    "job queued and assigned at once (eager dispatch)", extra=job.log_fields
                )
        return job, True

    async def _insert_job(
        self,
        job_id: uuid.UUID,
        valid: JobSpec,
        created: Event,
        assign_to: Sequence[uuid.UUID],
        key: str,
        digest: str,
        owner: uuid.UUID | None,
        trace_context: str,
    ) -> dict[str, Any] | None:
        """The queue_job statement: the job's row, or None when `key` is taken."""
        # One statement: key, job, queue row (or assignment), events, outbox rows and
        # the dispatchers' NOTIFY.
        async with self.db.connection() as tx:
            return await tx.one(
                "queue_job_keyed" if key else "queue_job",
                {
                    "id": job_id,
                    "name": valid.name,
                    "command": list(valid.command),
                    "env": Jsonb(valid.env),
                    "working_dir": valid.working_dir,
                    "timeout_seconds": valid.timeout_seconds,
                    "labels": Jsonb(valid.labels),
                    "selector": Jsonb(valid.selector),
                    "max_attempts": valid.max_attempts,
                    "correlation_id": created.correlation_id,
                    "secret_names": sorted(valid.secret_env),
                    "secret_env": self.box.seal(valid.secret_env),
                    "event_type": str(created.type),
                    "actor": created.actor,
                    "payload": Jsonb(created.payload),
                    "worker_ids": list(assign_to),
                    "server_id": self.server_id,
                    "ack_timeout": self.settings.dispatcher.ack_timeout,
                    "dispatch_actor": f"dispatcher:{self.server_id}",
                    "assigned_event": str(EventType.JOB_ASSIGNED),
                    "busy_event": str(EventType.WORKER_BUSY),
                    "owner": owner,
                    "trace_context": trace_context,
                    **(self._key_params(key, digest, [job_id]) if key else {}),
                },
            )

    async def submit_many(
        self,
        specs: Sequence[dict[str, Any]],
        idempotency_key: str = "",
        owner: uuid.UUID | None = None,
    ) -> list[JobRecord]:
        """Queue many jobs in one statement (its own transaction), in order: all or
        none. Each of `specs` holds queue()'s keyword arguments (`command` included,
        `assign_to` and `idempotency_key` not); an invalid one is named by its index.
        With an idempotency key already used for the same specs in the same order: the
        jobs that call created, in order."""
        key = validate_key(idempotency_key)
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
        digest = request_hash("jobs", [spec for _, spec, _ in prepared]) if key else ""
        # One enqueue span for the call: its jobs share the caller's trace.
        attributes = {"hodei.job_count": len(prepared)}
        with maybe_span(tracer, self.tracing, "enqueue", attributes=attributes) as span:
            for _ in range(_KEY_ROUNDS):
                rows = await self._insert_jobs(prepared, key, digest, owner, traceparent(span))
                if rows:
                    break
                replayed = await self._replay(key, digest, "jobs", owner)
                if replayed is not None:
                    return replayed
            else:
                raise self._unsettled(key)
        self.assigner.note_queued()
        jobs = [JobRecord.from_row(r) for r in rows]
        server_metrics().submitted(len(jobs))
        logger.info("%d jobs queued in one call", len(jobs), extra={"count": len(jobs)})
        if logger.isEnabledFor(logging.DEBUG):
            # One line per job, so that each job's submission can be found by its id.
            for job in jobs:
                logger.debug("job queued in a batch", extra=job.log_fields)
        return jobs

    async def _insert_jobs(
        self,
        prepared: list[tuple[uuid.UUID, JobSpec, Event]],
        key: str,
        digest: str,
        owner: uuid.UUID | None,
        trace_context: str,
    ) -> list[dict[str, Any]]:
        """The queue_job_batch statement: the jobs' rows, or none when `key` is taken."""
        async with self.db.connection() as tx:
            return await tx.all(
                "queue_job_batch_keyed" if key else "queue_job_batch",
                {
                    "ids": [job_id for job_id, _, _ in prepared],
                    "names": [spec.name for _, spec, _ in prepared],
                    "commands": [Jsonb(list(spec.command)) for _, spec, _ in prepared],
                    "envs": [Jsonb(spec.env) for _, spec, _ in prepared],
                    "working_dirs": [spec.working_dir for _, spec, _ in prepared],
                    "timeouts": [spec.timeout_seconds for _, spec, _ in prepared],
                    "labels": [Jsonb(spec.labels) for _, spec, _ in prepared],
                    "selectors": [Jsonb(spec.selector) for _, spec, _ in prepared],
                    "max_attempts": [spec.max_attempts for _, spec, _ in prepared],
                    "correlation_ids": [ev.correlation_id for _, _, ev in prepared],
                    "payloads": [Jsonb(ev.payload) for _, _, ev in prepared],
                    "secret_names": [Jsonb(sorted(spec.secret_env)) for _, spec, _ in prepared],
                    "secret_envs": [self.box.seal(spec.secret_env) for _, spec, _ in prepared],
                    "event_type": str(EventType.JOB_CREATED),
                    "actor": "client",
                    "owner": owner,
                    "trace_context": trace_context,
                    **(
                        self._key_params(key, digest, [job_id for job_id, _, _ in prepared])
                        if key
                        else {}
                    ),
                },
            )

    def _key_params(self, key: str, digest: str, job_ids: list[uuid.UUID]) -> dict[str, Any]:
        return {
            "key": key,
            "request_hash": digest,
            "key_job_ids": job_ids,
            "key_window": self.settings.submission.idempotency_window,
        }

    async def _replay(
        self, key: str, digest: str, kind: SubmissionKind, owner: uuid.UUID | None
    ) -> list[JobRecord] | None:
        """The jobs a taken key names, in request order; None when the key is unknown
        after all (forgotten meanwhile, or its jobs were pruned: then it is forgotten
        here), so that the caller submits anew. Writes no job, event or outbox row."""
        async with self.db.connection() as tx:
            stored = await tx.one("get_submission_key", {"key": key})
            if stored is None:
                return None
            if stored["request_hash"] != digest:
                raise AlreadyExists(
                    f"idempotency key {key!r} was used for a different "
                    f"{'job spec' if kind == 'job' else 'list of job specs'} within the "
                    f"last {window_text(self.settings.submission.idempotency_window)}"
                )
            job_ids: list[uuid.UUID] = stored["job_ids"]
            rows = await tx.all("get_jobs", {"ids": job_ids})
            if len(rows) < len(job_ids):
                await tx.execute("forget_submission_key", {"key": key, "job_ids": job_ids})
                logger.info(
                    "idempotency key %r forgotten: its jobs were pruned",
                    key,
                    extra={"idempotency_key": key},
                )
                return None
        by_id = {row["id"]: JobRecord.from_row(row) for row in rows}
        jobs = [by_id[job_id] for job_id in job_ids]
        if any(job.owner_token_id != owner for job in jobs):
            # Keys are one namespace: another caller's key must not answer its jobs.
            raise AlreadyExists(f"idempotency key {key!r} was used by another caller")
        logger.info(
            "submission replayed: idempotency key %r already queued %d job(s)",
            key,
            len(jobs),
            extra={"idempotency_key": key, "job_id": str(jobs[0].id), "count": len(jobs)},
        )
        return jobs

    @staticmethod
    def _unsettled(key: str) -> Unavailable:
        return Unavailable(f"idempotency key {key!r} changed hands repeatedly; retry the call")

    def _new_job(
        self, command: list[str], correlation_id: str = "", **spec: Any
    ) -> tuple[uuid.UUID, JobSpec, Event]:
        """A validated spec (hodei.domain.jobs.validate_spec's keyword arguments: env,
        working_dir, timeout_seconds, max_attempts, name, labels), the new job's id and
        its JobCreated event (whose payload holds no env, secret or not)."""
        valid = validate_spec(
            command, **spec, default_max_attempts=self.settings.server.default_max_attempts
        )
        if valid.secret_env and not self.box.enabled:
            raise FailedPrecondition(NO_KEY)
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
            **({"selector": valid.selector} if valid.selector else {}),
        )
        return job_id, valid, created


def window_text(seconds: float) -> str:
    """The idempotency window as people write it: "24h", "90min", "45s"."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}min"
    return f"{seconds:g}s"
