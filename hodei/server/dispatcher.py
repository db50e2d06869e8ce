"""The dispatcher: moves queued jobs to READY workers whose stream is open here.

Wakes on the NOTIFY sent by the enqueue transaction (at once, without it, for a
job queued through this server), on local capacity changes
(a worker connected, a slot freed) and, as a backstop for lost notifications,
every `dispatch_poll_interval` seconds. Each cycle is recorded in server_status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from hodei.db.connector import DATABASE_DOWN, use_role
from hodei.errors import first_line
from hodei.metrics import server_metrics
from hodei.server.assignment import Assigner, RunPusher
from hodei.server.listener import Listener
from hodei.server.sessions import SessionRegistry
from hodei.server.status import ServerStatus
from hodei.server.supervisor import wait_or_stop
from hodei.settings import Settings

logger = logging.getLogger(__name__)

JOBS_CHANNEL = "hodei_jobs"
_STATUS_EVERY = 0.25
#: Seconds to gather freed slots before claiming for them. Results now arrive in
#: groups (one statement frees several slots), so little is left to gather: at 2 ms
#: the median of six interleaved QueueJobs runs was 390 jobs/s, at 10 ms 327, at 0 362.
_CAPACITY_GATHER = 0.002


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        database_url: str,
        assigner: Assigner,
        registry: SessionRegistry,
        status: ServerStatus,
        pusher: RunPusher,
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.assigner = assigner
        self.registry = registry
        self.pusher = pusher
        self.status = status
        self.notified = asyncio.Event()
        self.cycles = 0
        self.dispatched_total = 0
        # Cycles not yet written to server_status (written at most every
        # _STATUS_EVERY seconds while busy, and before every idle wait).
        self._unrecorded_cycles = 0
        self._unrecorded_dispatched = 0
        self._recorded_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """The supervised loop. A cycle that fails leaves its error in server_status
        (a diagnosis then says "crashing: <error>", not "stalled"), then restarts."""
        use_role("dispatcher")
        try:
            await self._run(stop)
        except asyncio.CancelledError:
            raise
        except DATABASE_DOWN:
            server_metrics().dispatcher_errors.inc()
            raise  # not the dispatcher's failure (the database away): no status row
        except Exception as exc:
            server_metrics().dispatcher_errors.inc()
            with contextlib.suppress(Exception):
                await self.status.dispatcher_failed(f"{type(exc).__name__}: {first_line(exc)}")
            raise

    async def _run(self, stop: asyncio.Event) -> None:
        async with Listener(self.database_url, JOBS_CHANNEL, self.notified) as listener:
            logger.info(
                "dispatcher started (poll every %.2f s, batch %d)",
                self.settings.dispatcher.poll_interval,
                self.settings.dispatcher.batch_size,
                extra={"server_id": self.assigner.server_id},
            )
            while not stop.is_set():
                listener.check()
                self.notified.clear()
                self.assigner.queued.clear()
                self.registry.capacity_changed.clear()
                dispatched = await self.cycle()
                await self._record()
                if dispatched >= self.settings.dispatcher.batch_size:
                    continue  # there may be more work right now
                await wait_or_stop(
                    stop,
                    self.notified,
                    self.assigner.queued,
                    self.registry.capacity_changed,
                    seconds=self.settings.dispatcher.poll_interval,
                )
                new_job = self.notified.is_set() or self.assigner.queued.is_set()
                if self.registry.capacity_changed.is_set() and not new_job:
                    # Only a slot freed (a job finished): let the other finishing jobs of
                    # a burst free theirs, and claim for all of them in one transaction.
                    # A new job's NOTIFY is never delayed.
                    await wait_or_stop(
                        stop, self.notified, self.assigner.queued, seconds=_CAPACITY_GATHER
                    )
        logger.info("dispatcher stopped")

    async def cycle(self) -> int:
        """One pass: claim, assign, push. Returns how many jobs were dispatched."""
        began = time.perf_counter()
        registry = self.registry
        assigned = await self.assigner.claim_and_assign(
            registry.worker_ids(), registry.labelled_worker_ids()
        )
        pushed = await self.pusher.push(assigned)
        self.cycles += 1
        server_metrics().cycle_done()
        self.dispatched_total += pushed
        self._unrecorded_cycles += 1
        self._unrecorded_dispatched += pushed
        if assigned:
            logger.info(
                "dispatch cycle: %d jobs sent",
                pushed,
                extra={
                    "count": pushed,
                    "duration_ms": round((time.perf_counter() - began) * 1000, 2),
                },
            )
        return len(assigned)

    async def _record(self) -> None:
        """Write the cycles since the last write to server_status, at most every
        _STATUS_EVERY: an idle platform woken by each finished job wrote (and flushed)
        a status row per job; the row lags by at most one poll interval now."""
        now = time.monotonic()
        # Jobs QueueJob assigned itself count as dispatched (by this server's dispatch).
        eager, self.pusher.eager_unrecorded = self.pusher.eager_unrecorded, 0
        self.dispatched_total += eager
        self._unrecorded_dispatched += eager
        if not self._unrecorded_cycles or now - self._recorded_at < _STATUS_EVERY:
            return
        await self.status.dispatch_cycles(self._unrecorded_cycles, self._unrecorded_dispatched)
        self._unrecorded_cycles = 0
        self._unrecorded_dispatched = 0
        self._recorded_at = now
