"""The recovery loop: nothing stays stuck when a worker or a message goes missing.

- workers silent for heartbeat_interval * heartbeat_miss_limit become LOST and
  their jobs go back to the queue (or FAIL once attempts are exhausted), but only once
  this loop has watched the database for that long itself: after the server starts,
  and after the database comes back, old heartbeats say nothing (no server was there
  to store newer ones), so nobody is LOST before a full miss window has passed; a worker
  message this server failed to store for want of the database counts as such a break,
  however short (the chaos suite's fast PostgreSQL restart, ~1 s, fell between sweeps and
  8 jobs ran twice);
- ASSIGNED jobs not acknowledged by their ack deadline go back to the queue, with the
  same care: an ack the worker sent while the database was away was not stored, and
  the worker resends it once it is back; so no ack expires before this loop has
  watched the database for a whole ack timeout (the chaos suite had 2 jobs run twice
  in a 3 s outage: requeued 0.3 s after the database came back, their acks 0.2 s later);
- RUNNING jobs past their timeout plus a grace period become TIMED_OUT and their
  worker is told to kill them;
- a cancel the worker never confirmed is forced to CANCELLED;
- a queue row whose job is not PENDING (a stray row: put back for a finished job)
  is removed with a `Repaired` event and a log line: the dispatcher skips such rows
  rather than deleting them silently, so every repair leaves a trace.
A worker streaming to this server is judged by its stream before its stored heartbeat:
a message read within the miss window, or messages waiting on this server's database,
keep it alive; an ack read but not yet stored keeps its job (hodei.server.sessions).
The windows above cannot see a stall inside one sweep's contact: the chaos suite had
both workers called LOST 2.8 s after a 3 s outage, their heartbeat writes stuck behind
a pool still reconnecting, and 16 finished but unstored jobs ran again (1 run in 4).

It also refreshes this server's heartbeat in server_status.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable
from typing import TypeVar

from hodei.db.connector import Database, use_role
from hodei.domain.events import EventType
from hodei.domain.jobs import JobState
from hodei.domain.workers import SilenceWatch, WorkerState
from hodei.errors import HodeiError
from hodei.log_context import job_context
from hodei.server.job_reads import JobReads
from hodei.server.logs import LogBus
from hodei.server.models import AttemptRef, CancelCommand
from hodei.server.sessions import SessionRegistry
from hodei.server.status import ServerStatus
from hodei.server.supervisor import wait_or_stop
from hodei.server.transitions import JobTransitions
from hodei.server.workers import WorkerService
from hodei.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: The stray-queue-row repair waits this many times its own duration before it runs
#: again (1/50: at most 2 % of the database time it would take running back to back).
_REPAIR_SHARE_INVERSE = 50.0


class Recovery:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        job_reads: JobReads,
        transitions: JobTransitions,
        workers: WorkerService,
        registry: SessionRegistry,
        bus: LogBus,
        status: ServerStatus,
    ) -> None:
        self.settings = settings
        self.db = db
        self.job_reads = job_reads
        self.transitions = transitions
        self.workers = workers
        self.registry = registry
        self.bus = bus
        self.status = status
        #: Whether silence may be judged yet (hodei.domain.workers.SilenceWatch); made
        #: anew each time the loop (re)starts: the supervisor restarts it when a sweep
        #: fails, e.g. while the database is away.
        self.watch = self._new_watch()
        self.ack_watch = self._new_watch(self.settings.dispatcher.ack_timeout)
        self._unstored_seen = 0
        self._next_repair = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        use_role("recovery")
        logger.info("recovery loop started (worker silence limit %.1f s)", self.silence_limit)
        self.watch = self._new_watch()
        self.ack_watch = self._new_watch(self.settings.dispatcher.ack_timeout)
        while not stop.is_set():
            await self.sweep()
            await self.status.heartbeat()
            await wait_or_stop(stop, seconds=self.settings.recovery.reaper_interval)
        logger.info("recovery loop stopped")

    @property
    def silence_limit(self) -> float:
        return (
            self.settings.recovery.heartbeat_interval * self.settings.recovery.heartbeat_miss_limit
        )

    async def _ids(self, query: str, params: dict[str, object] | None = None) -> list[uuid.UUID]:
        async with self.db.connection() as tx:
            return [row["id"] for row in await tx.all(query, params)]

    def _new_watch(self, window_s: float | None = None) -> SilenceWatch:
        # A contact normally comes every reaper_interval (plus the sweep's own time): a
        # gap of two more seconds means the database, or this server, was not there.
        # Silence is judged over a miss window plus the workers' longest reconnect
        # backoff: a worker that lost its server may wait that long before it tries
        # again, heartbeat-less (the chaos suite saw a live worker reconnect 2 s after a
        # restarted server, 0.03 s after being called LOST with a 1.5 s window; 8 of its
        # finished but unconfirmed jobs ran again). Deployments set the backoff alike for
        # servers and workers (HODEI_RECONNECT_MAX_BACKOFF, 10 s by default).
        if window_s is None:
            window_s = self.silence_limit + self.settings.worker.reconnect_max_backoff
        return SilenceWatch(window_s, self.settings.recovery.reaper_interval + 2.0)

    async def sweep(self) -> None:
        silent = await self._ids("silent_workers", {"silence": self.silence_limit})
        # Judged after the query: one that waited out an outage is a break itself.
        self._note_unstored()
        if not self.watch.reached(time.monotonic()):
            silent = []  # not yet: the workers may be reconnecting, or their heartbeats unsaved
        # A worker whose stream to this server delivered a message within the window
        # (or waits on this server's database) is alive, whatever its stored heartbeat.
        silent = [w for w in silent if not self.registry.vouches_for(w, self.silence_limit)]
        for worker_id in silent:
            await self._guard(
                self.workers.mark_gone(
                    worker_id,
                    WorkerState.LOST,
                    f"no heartbeat for {self.silence_limit:.0f} s",
                )
            )
            session = self.registry.get(worker_id)
            if session is not None:
                session.close()  # a stream that delivers no heartbeats is not trusted
            self.registry.capacity_changed.set()
        async with self.db.connection() as tx:
            due = await tx.all("expired_acks")
        # Again after its own query: the chaos suite had a sweep decide that acks were due,
        # then wait 11 s on this query through a database outage and requeue jobs whose
        # workers' acks had found no database to store them (3 jobs ran twice).
        self._note_unstored()
        if not self.ack_watch.reached(time.monotonic()):
            due = []
        # An ack this server read but has not stored yet is an ack: the worker runs it.
        expired = [
            row["id"]
            for row in due
            if not self.registry.has_ack(row["worker_id"], AttemptRef(row["id"], row["attempts"]))
        ]
        for job_id in expired:
            with job_context(job_id):
                job = await self._guard(
                    self.transitions.requeue(
                        job_id, "worker did not acknowledge the job in time", "recovery"
                    )
                )
            if job is not None:
                self.bus.job_changed(job.id)
                self.registry.capacity_changed.set()
        grace = (
            self.settings.recovery.cancel_grace_seconds + self.settings.recovery.heartbeat_interval
        )
        for job_id in await self._ids("overdue_running", {"grace": grace}):
            await self._force(job_id, JobState.TIMED_OUT, "no result before the timeout")
        for job_id in await self._ids("overdue_cancels", {"grace": grace}):
            await self._force(job_id, JobState.CANCELLED, "cancel not confirmed by the worker")
        if time.monotonic() >= self._next_repair:
            began = time.monotonic()
            await self.repair_stray_queue_rows()
            # The statement reads the whole queue (~18 ms at 10,000 queued jobs on the
            # development machine): on a long queue it runs less often, at most 2 % of
            # the time, instead of every sweep.
            took = time.monotonic() - began
            self._next_repair = began + max(took * _REPAIR_SHARE_INVERSE, 0.0)
        # The sweep's end is a contact too: a long sweep (many LOST workers) is not a
        # break in this loop's view of the database.
        self.watch.reached(time.monotonic())
        self.ack_watch.reached(time.monotonic())

    async def repair_stray_queue_rows(self) -> int:
        """Remove queue rows whose job is not PENDING, each with a Repaired event in the
        same statement; returns how many."""
        async with self.db.connection() as tx:
            rows = await tx.all(
                "repair_stray_queue_rows",
                {
                    "limit": 100,
                    "event_type": str(EventType.REPAIRED),
                    "actor": f"recovery:{self.workers.server_id}",
                },
            )
        for row in rows:
            logger.warning(
                "repaired: removed a stray queue row (job is %s, not PENDING)",
                row["state"],
                extra={
                    "job_id": str(row["job_id"]),
                    "correlation_id": row["correlation_id"],
                    "repair": "stray_queue_row",
                },
            )
        if rows:
            self.registry.capacity_changed.set()  # the queue's head may have been a stray
        return len(rows)

    def _note_unstored(self) -> None:
        """Worker messages went unstored since the last look: the database was away, if
        only for less than a sweep (a fast restart). Both windows start again."""
        if self.workers.unstored_messages != self._unstored_seen:
            self._unstored_seen = self.workers.unstored_messages
            self.watch.interrupt()
            self.ack_watch.interrupt()

    async def _force(self, job_id: uuid.UUID, state: JobState, reason: str) -> None:
        with job_context(job_id):
            await self._force_one(job_id, state, reason)

    async def _force_one(self, job_id: uuid.UUID, state: JobState, reason: str) -> None:
        before = await self.job_reads.get_job(job_id)
        job = await self._guard(self.transitions.force_final(job_id, state, reason, "recovery"))
        if job is not None:
            self.registry.send(
                before.worker_id,
                CancelCommand(AttemptRef(job_id, before.attempts), force=True, reason=reason),
            )
            self.bus.job_changed(job_id)
            self.registry.capacity_changed.set()

    async def _guard(self, work: Awaitable[T]) -> T | None:
        """A race with a worker's own report (it finished just now) is not an error."""
        try:
            return await work
        except HodeiError as err:
            logger.info("recovery skipped: %s", err)
            return None
