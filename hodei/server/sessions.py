"""Worker streams open on this server, and the protocol spoken on them.

`SessionRegistry` is the in-memory view the dispatcher assigns from: a worker is
assignable only while its stream is open here (and its row says READY with
server_id = this server). `WorkerProtocol` applies each worker message through
the services and queues the answers; a per-message error becomes a Rejected
answer, never the end of the stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime

from hodei.domain.workers import WorkerState
from hodei.errors import HodeiError
from hodei.server.logs import LogService
from hodei.server.models import (
    AttemptRef,
    LogChunk,
    PersistedNotice,
    RejectedNotice,
    ServerCommand,
    WelcomeNotice,
)
from hodei.server.results import AttemptResult, FinishOutcome, WorkerResults
from hodei.server.workers import WorkerService

logger = logging.getLogger(__name__)

#: Attempts whose acknowledgement this server read on a stream, remembered per session
#: until it is stored (far more than a worker has in flight at once).
_ACKS_REMEMBERED = 4096


class Session:
    """One open WorkerStream: an unbounded queue of commands for the worker, and what
    this server itself heard on it, whatever the database could store.

    The recovery loop judges silence from workers.last_heartbeat, which only says
    something while the database could store heartbeats. For a worker streaming to
    this server, the stream says more: a message read a moment ago is a live worker,
    and a stream whose messages wait on this server's database (its inbox full) is
    our stall, not the worker's silence. The chaos suite had both workers called LOST
    2.8 s after a 3 s PostgreSQL outage, their heartbeats stuck behind a pool waiting
    for a connection, and 16 finished but unstored jobs ran again.
    """

    def __init__(
        self,
        worker_id: uuid.UUID,
        batches: bool = False,
        labelled: bool = False,
        token_id: uuid.UUID | None = None,
    ) -> None:
        self.worker_id = worker_id
        #: The token the stream was opened with (None: authentication off).
        self.token_id = token_id
        #: Why the server cut the stream (its token was refused); "" while it is open.
        self.cut_reason = ""
        #: The worker reads ServerMessage.batch (its Hello said so).
        self.batches = batches
        #: The worker has labels: only such a worker can take a job with a selector.
        self.labelled = labelled
        self.outbox: asyncio.Queue[ServerCommand | None] = asyncio.Queue()
        self.closed = False
        #: Monotonic time of the last message read on the stream.
        self.last_contact = time.monotonic()
        #: The reader is waiting for room to queue a message: this server is behind.
        self.backlogged = False
        self._acks_read: OrderedDict[AttemptRef, None] = OrderedDict()

    def heard(self) -> None:
        self.last_contact = time.monotonic()

    def ack_read(self, ref: AttemptRef) -> None:
        """The worker took this attempt (an ack, a start or a result was read)."""
        self._acks_read[ref] = None
        self._acks_read.move_to_end(ref)
        while len(self._acks_read) > _ACKS_REMEMBERED:
            self._acks_read.popitem(last=False)

    def has_ack(self, ref: AttemptRef) -> bool:
        return ref in self._acks_read

    def vouches(self, window_s: float, now: float | None = None) -> bool:
        """Whether this stream proves its worker alive over the last `window_s`."""
        if self.closed:
            return False
        now = time.monotonic() if now is None else now
        return self.backlogged or now - self.last_contact < window_s

    def send(self, command: ServerCommand) -> bool:
        """Queue a command; False once the stream is gone (the caller requeues)."""
        if self.closed:
            return False
        self.outbox.put_nowait(command)
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.outbox.put_nowait(None)

    def cut(self, reason: str) -> None:
        """End the stream for good: the worker gets UNAUTHENTICATED with `reason`."""
        self.cut_reason = reason
        self.close()


class SessionRegistry:
    def __init__(self) -> None:
        self._sessions: dict[uuid.UUID, Session] = {}
        #: Set when capacity may have appeared (a worker connected, a slot freed):
        #: the dispatcher runs a cycle at once instead of waiting for its poll.
        self.capacity_changed = asyncio.Event()

    def add(self, session: Session) -> None:
        old = self._sessions.get(session.worker_id)
        if old is not None and old is not session:
            old.close()  # the worker reconnected; its previous stream is dead
        self._sessions[session.worker_id] = session
        self.capacity_changed.set()

    def remove(self, session: Session) -> bool:
        """Forget the session if it is still the worker's current one."""
        session.close()
        if self._sessions.get(session.worker_id) is session:
            del self._sessions[session.worker_id]
            return True
        return False

    def get(self, worker_id: uuid.UUID | None) -> Session | None:
        return self._sessions.get(worker_id) if worker_id is not None else None

    def vouches_for(self, worker_id: uuid.UUID, window_s: float) -> bool:
        """This server's own stream from the worker proves it alive (Session.vouches)."""
        session = self._sessions.get(worker_id)
        return session is not None and session.vouches(window_s)

    def has_ack(self, worker_id: uuid.UUID | None, ref: AttemptRef) -> bool:
        """The worker's stream here read its acknowledgement of `ref`, or it is behind
        on this server's database (what it sent may be waiting to be stored)."""
        session = self.get(worker_id)
        if session is None or session.closed:
            return False
        return session.backlogged or session.has_ack(ref)

    def worker_ids(self) -> list[uuid.UUID]:
        return list(self._sessions)

    def token_ids(self) -> set[uuid.UUID]:
        """The tokens the open streams were opened with."""
        return {s.token_id for s in self._sessions.values() if s.token_id is not None}

    def cut_token(self, token_id: uuid.UUID, reason: str) -> list[uuid.UUID]:
        """Cut every stream opened with this token; returns their workers."""
        cut = [s for s in self._sessions.values() if s.token_id == token_id]
        for session in cut:
            session.cut(reason)
        return [s.worker_id for s in cut]

    def labelled_worker_ids(self) -> list[uuid.UUID]:
        """The workers that can match a selector (they have labels)."""
        return [w for w, session in self._sessions.items() if session.labelled]

    def send(self, worker_id: uuid.UUID | None, command: ServerCommand) -> bool:
        session = self.get(worker_id)
        return session.send(command) if session is not None else False

    def close_all(self) -> None:
        for session in list(self._sessions.values()):
            session.close()
        self._sessions.clear()


class WorkerProtocol:
    """Handles the messages of one worker stream after its Hello."""

    def __init__(
        self,
        session: Session,
        registry: SessionRegistry,
        results: WorkerResults,
        workers: WorkerService,
        logs: LogService,
    ) -> None:
        self.session = session
        self.worker_id = session.worker_id
        self.registry = registry
        self.results = results
        self.workers = workers
        self.logs = logs
        # Results that arrived before all of their attempt's lines were persisted.
        self.pending: dict[uuid.UUID, AttemptResult] = {}
        #: The heartbeat being stored, if any (the stream's reader does not wait for it),
        #: and the latest one read meanwhile: (sent_at, prefetch), stored next.
        self.heartbeat_write: asyncio.Task[None] | None = None
        self.heartbeat_due: tuple[datetime | None, int | None] | None = None
        #: The prefetch this worker asked for (Hello, then Heartbeat.prefetch).
        self.prefetch = 0

    @classmethod
    async def hello(
        cls,
        worker_id: uuid.UUID,
        running: list[AttemptRef],
        slots: int,
        registry: SessionRegistry,
        results: WorkerResults,
        workers: WorkerService,
        logs: LogService,
        batches: bool = False,
        sent_at: datetime | None = None,
        prefetch: int = 0,
        token_id: uuid.UUID | None = None,
    ) -> WorkerProtocol:
        """Connect the worker (READY only now) and queue the Welcome. `sent_at`: the
        worker's clock when it sent its Hello (its skew is stored)."""
        worker, superseded = await workers.connect(worker_id, running, slots, sent_at, prefetch)
        session = Session(worker_id, batches, labelled=bool(worker.labels), token_id=token_id)
        session.send(WelcomeNotice(worker_id, workers.server_id, superseded))
        registry.add(session)
        protocol = cls(session, registry, results, workers, logs)
        protocol.prefetch = prefetch
        return protocol

    def _reject(self, ref: AttemptRef | None, err: HodeiError) -> None:
        fields: dict[str, object] = {"worker_id": str(self.worker_id)}
        if ref is not None:
            fields |= {"job_id": str(ref.job_id), "attempt": ref.attempt}
        logger.warning("worker message rejected: %s", err, extra=fields)
        self.session.send(RejectedNotice(ref, err.code, str(err)))

    async def heartbeat(self, sent_at: datetime | None = None, prefetch: int | None = None) -> None:
        await self.workers.heartbeat(self.worker_id, sent_at)
        if prefetch is not None and prefetch != self.prefetch:
            await self.workers.set_prefetch(self.worker_id, prefetch)
            self.prefetch = prefetch
            self.registry.capacity_changed.set()  # more room, maybe: deal again

    async def draining(self) -> None:
        await self.workers.drain(self.worker_id)
        self.registry.capacity_changed.set()  # one assignable worker fewer

    async def goodbye(self, reason: str) -> None:
        """The worker ends on purpose, after the server confirmed its results: it is
        TERMINATED, not left to turn LOST when its heartbeats stop."""
        text = " ".join(reason.split())[:200] or "the worker stopped"
        await self.workers.mark_gone(self.worker_id, WorkerState.TERMINATED, text)

    async def ack(self, ref: AttemptRef, accepted: bool, reason: str) -> None:
        try:
            job = await self.results.ack(self.worker_id, ref, accepted, reason)
        except HodeiError as err:
            self._reject(ref, err)
            return
        if not accepted:
            self.registry.capacity_changed.set()
            self.logs.bus.job_changed(job.id)

    async def apply_group(
        self,
        acks: list[AttemptRef],
        started: list[AttemptRef],
        results: list[AttemptResult],
        start_times: Sequence[datetime | None] = (),
    ) -> None:
        """Accepted JobAcks, JobStarted and JobResult messages read together, applied in
        one transaction (hodei.server.results.WorkerResults.apply_group); `start_times`:
        the worker's start time of each of `started`."""
        if not (acks or started or results):
            return
        outcomes = await self.results.apply_group(
            self.worker_id, acks, started, results, start_times
        )
        for ref, acked in zip(acks, outcomes.acks, strict=True):
            if isinstance(acked, HodeiError):
                self._reject(ref, acked)
        for ref, started_job in zip(started, outcomes.started, strict=True):
            if isinstance(started_job, HodeiError):
                self._reject(ref, started_job)
        for result, outcome in zip(results, outcomes.finished, strict=True):
            self._after_result(result, outcome)

    async def log_batch(self, ref: AttemptRef, first_line: int, chunk: LogChunk) -> None:
        try:
            next_line = await self.logs.ingest(self.worker_id, ref, first_line, chunk)
        except HodeiError as err:
            self.pending.pop(ref.job_id, None)
            self._reject(ref, err)
            return
        pending = self.pending.get(ref.job_id)
        if pending is not None and pending.ref == ref and next_line >= pending.total_lines:
            del self.pending[ref.job_id]
            (outcome,) = await self.results.finish_many(self.worker_id, [pending])
            if self._after_result(pending, outcome):
                return
        self.session.send(PersistedNotice(ref, next_line))

    def _after_result(self, result: AttemptResult, outcome: FinishOutcome) -> bool:
        """Answer an applied (or refused) result; keep one whose lines are still in
        flight, to finish once they are persisted. True once it is answered."""
        if isinstance(outcome, HodeiError):
            self._reject(result.ref, outcome)
            return True
        if outcome is None:
            self.pending[result.ref.job_id] = result
            return False
        self.session.send(PersistedNotice(result.ref, outcome.attempt_lines, result_persisted=True))
        self.registry.capacity_changed.set()
        self.logs.bus.job_changed(outcome.id)
        return True

    async def close(self) -> None:
        """The stream ended: the worker is no longer assignable here. Its jobs stay
        with it until it reconnects or its heartbeat deadline passes."""
        if self.registry.remove(self.session):
            try:
                await self.workers.disconnect(self.worker_id)
            except Exception:
                logger.exception(
                    "could not mark worker disconnected", extra={"worker_id": str(self.worker_id)}
                )
