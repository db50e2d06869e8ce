"""WorkerAgentService: Register, the WorkerStream protocol, ListWorkers.

Stream protocol (see docs/worker-protocol.md): the first message must be Hello
(else INVALID_ARGUMENT); an unknown worker id ends the stream with NOT_FOUND (the
worker registers again). After the Welcome, each worker message is applied in
order; a message that cannot be applied is answered with Rejected and the stream
stays open. A malformed message (undecodable bytes, no payload) ends the stream with
INVALID_ARGUMENT and the reason, after the messages before it were applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import grpc

from hodei.api.v1 import workers_pb2, workers_pb2_grpc
from hodei.db.connector import use_role
from hodei.domain.auth import hash_secret, new_secret
from hodei.errors import HodeiError, InvalidArgument
from hodei.server.api.auth import current_caller
from hodei.server.api.convert import (
    attempt_result,
    commands_to_proto,
    log_chunk,
    parse_id,
    ref_from_proto,
    worker_time,
    worker_to_proto,
)
from hodei.server.api.decoding import Undecodable
from hodei.server.api.status_codes import DATABASE_DOWN, abort_for, one_line, unary
from hodei.server.models import AttemptRef, RejectedNotice, WelcomeNotice
from hodei.server.results import AttemptResult
from hodei.server.services import Services
from hodei.server.sessions import WorkerProtocol

logger = logging.getLogger(__name__)

#: Messages read ahead of processing; beyond that HTTP/2 flow control slows the worker.
_INBOX = 64
#: Worker messages applied in groups: one statement per kind, one transaction for the
#: group (hodei.server.results).
_APPLIED_IN_GROUPS = frozenset({"ack", "started", "result"})
_MAX_APPLIED_GROUP = 256
#: Commands written as one ServerMessage: at most 32 RunJobs of the largest allowed
#: spec (~200 KiB each) stay under the worker's 16 MiB receive limit.
_MAX_GROUP = 32
#: Upper bound of lines merged into one insert.
_MERGE_LINES = 50_000


class _Ending:
    """Why the worker's side of a stream ended early; empty when it just ended."""

    __slots__ = ("reason",)

    def __init__(self) -> None:
        self.reason = ""


class WorkerAgentServicer(workers_pb2_grpc.WorkerAgentServiceServicer):
    def __init__(self, services: Services, database_up: Callable[[], bool] = lambda: True) -> None:
        self.services = services
        #: The database watch's view: while it finds the database away, a worker message
        #: on an open stream is refused at once (as a unary call is by the gate) rather
        #: than waiting on the pool for a connection.
        self.database_up = database_up

    @unary
    async def Register(
        self, request: workers_pb2.RegisterRequest, context: grpc.aio.ServicerContext
    ) -> workers_pb2.RegisterResponse:
        secret = new_secret()
        worker = await self.services.workers.register(
            name=request.name,
            hostname=request.hostname,
            pid=request.pid,
            slots=request.slots,
            version=request.version,
            labels=dict(request.labels),
            token_id=current_caller().token_id,
            secret_hash=hash_secret(secret),
        )
        return workers_pb2.RegisterResponse(
            worker_id=str(worker.id),
            heartbeat_interval_ms=int(self.services.settings.recovery.heartbeat_interval * 1000),
            session_secret=secret,
        )

    @unary
    async def ListWorkers(
        self, request: workers_pb2.ListWorkersRequest, context: grpc.aio.ServicerContext
    ) -> workers_pb2.ListWorkersResponse:
        owner = current_caller().owner_filter()
        workers = await self.services.workers.list(request.include_gone, owner)
        return workers_pb2.ListWorkersResponse(workers=[worker_to_proto(w) for w in workers])

    async def WorkerStream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        use_role("worker-stream")  # this call's task, and the reader it starts
        try:
            protocol = await self._hello(context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await abort_for(exc, context, "WorkerStream")
        if protocol is None:
            return
        ending = _Ending()
        reader = asyncio.create_task(
            self._read(protocol, context, ending), name="worker-stream-reader"
        )
        outbox = protocol.session.outbox
        try:
            while True:
                command = await outbox.get()
                if command is None:
                    break
                # Commands queued meanwhile go in the same write, to a worker that
                # reads batches. Never the Welcome: the worker's connection looks for
                # it as a message of its own before it writes anything.
                group = [command]
                ended = False
                batching = protocol.session.batches and not isinstance(command, WelcomeNotice)
                while batching and len(group) < _MAX_GROUP and not outbox.empty():
                    following = outbox.get_nowait()
                    if following is None:
                        ended = True
                        break
                    group.append(following)
                await context.write(commands_to_proto(group))
                if ended:
                    break
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            await protocol.close()
        if protocol.session.cut_reason:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, protocol.session.cut_reason)
        if ending.reason:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, ending.reason)

    async def _hello(self, context: grpc.aio.ServicerContext) -> WorkerProtocol | None:
        first = await context.read()
        if first is grpc.aio.EOF:
            return None
        if isinstance(first, Undecodable):
            raise InvalidArgument(first.reason)
        assert isinstance(first, workers_pb2.WorkerMessage)
        if first.WhichOneof("payload") != "hello":
            raise InvalidArgument("the first message on a worker stream must be Hello")
        hello = first.hello
        worker_id = parse_id(hello.worker_id, "worker_id")
        running = [ref_from_proto(r) for r in hello.running]
        # Before WorkerProtocol.hello: a refused Hello leaves the live stream untouched.
        await self.services.workers.check_binding(
            worker_id, current_caller().token_id, hello.session_secret
        )
        return await WorkerProtocol.hello(
            worker_id,
            running,
            hello.slots,
            self.services.registry,
            self.services.results,
            self.services.workers,
            self.services.logs,
            batches=hello.batches,
            sent_at=worker_time(hello, "sent_at"),
            prefetch=hello.prefetch,
            token_id=current_caller().token_id,
        )

    async def _read(
        self, protocol: WorkerProtocol, context: grpc.aio.ServicerContext, ending: _Ending
    ) -> None:
        """Apply the worker's messages in order until the stream ends.

        Log batches of one attempt that are already waiting are merged into one
        transaction: under load the database sees fewer, larger inserts.
        """
        inbox: asyncio.Queue[workers_pb2.WorkerMessage | None] = asyncio.Queue(_INBOX)
        pump = asyncio.create_task(
            self._pump(protocol, context, inbox, ending), name="worker-stream-pump"
        )
        held: workers_pb2.WorkerMessage | None = None
        try:
            while True:
                message = held if held is not None else await inbox.get()
                held = None
                if message is None:
                    break
                kind = message.WhichOneof("payload")
                if kind in _APPLIED_IN_GROUPS:
                    # Starts and results already waiting are applied together.
                    group = [message]
                    while not inbox.empty() and len(group) < _MAX_APPLIED_GROUP:
                        following = inbox.get_nowait()
                        if (
                            following is None
                            or following.WhichOneof("payload") not in _APPLIED_IN_GROUPS
                        ):
                            held = following
                            break
                        group.append(following)
                    await self._guarded(protocol, kind, self._apply_group(protocol, group))
                    continue
                if kind != "logs":
                    await self._apply(protocol, message)
                    continue
                batch = message.logs
                try:
                    ref = ref_from_proto(batch.ref)
                except HodeiError as err:
                    protocol.session.send(RejectedNotice(None, err.code, one_line(str(err))))
                    continue
                chunk = log_chunk(batch)
                while not inbox.empty() and len(chunk) < _MERGE_LINES:
                    following = inbox.get_nowait()
                    if (
                        following is not None
                        and following.WhichOneof("payload") == "logs"
                        and following.logs.ref == batch.ref
                        and following.logs.first_line == batch.first_line + len(chunk)
                    ):
                        chunk.extend(log_chunk(following.logs))
                    else:
                        held = following
                        break
                await self._guarded(
                    protocol, "logs", protocol.log_batch(ref, batch.first_line, chunk)
                )
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            if protocol.heartbeat_write is not None:
                protocol.heartbeat_write.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await protocol.heartbeat_write
            protocol.session.close()

    async def _pump(
        self,
        protocol: WorkerProtocol,
        context: grpc.aio.ServicerContext,
        inbox: asyncio.Queue[workers_pb2.WorkerMessage | None],
        ending: _Ending,
    ) -> None:
        try:
            while not ending.reason:
                message = await context.read()
                if message is grpc.aio.EOF:
                    break
                protocol.session.heard()
                ending.reason = malformed(message)
                if ending.reason:
                    break
                assert isinstance(message, workers_pb2.WorkerMessage)
                if message.WhichOneof("payload") == "batch":
                    for index, inner in enumerate(message.batch.messages):
                        ending.reason = malformed(inner, f"batch.messages[{index}]")
                        if ending.reason:
                            break
                        await self._take(protocol, inner, inbox)
                else:
                    await self._take(protocol, message, inbox)
            if ending.reason:
                # The worker's bug, not the server's: one line, and the worker reads
                # the same reason in the stream's status.
                logger.warning(
                    "worker stream closed: %s",
                    ending.reason,
                    extra={"worker_id": str(protocol.worker_id)},
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Reading failed: the transport is gone (client went away, keepalive).
            logger.info(
                "worker stream ended: %s",
                one_line(str(exc)) or type(exc).__name__,
                extra={"worker_id": str(protocol.worker_id)},
            )
        await inbox.put(None)

    async def _take(
        self,
        protocol: WorkerProtocol,
        message: workers_pb2.WorkerMessage,
        inbox: asyncio.Queue[workers_pb2.WorkerMessage | None],
    ) -> None:
        kind = message.WhichOneof("payload")
        if kind == "heartbeat":
            # Not queued behind log batches (a worker streaming a lot of output must
            # not look silent while its lines wait to be inserted), and not awaited
            # here: a database stall must not stop this reader, whose reads are what
            # vouch for the worker meanwhile (Session). One write at a time: a
            # heartbeat read while one is in flight is stored after it (latest wins).
            heartbeat = message.heartbeat
            prefetch = heartbeat.prefetch if heartbeat.HasField("prefetch") else None
            due = protocol.heartbeat_due
            if due is not None and prefetch is None:
                prefetch = due[1]  # a newer heartbeat does not undo a prefetch change
            protocol.heartbeat_due = (worker_time(heartbeat, "sent_at"), prefetch)
            if protocol.heartbeat_write is None or protocol.heartbeat_write.done():
                protocol.heartbeat_write = asyncio.create_task(
                    self._store_heartbeats(protocol), name="worker-heartbeat-write"
                )
            return
        _remember_ack(protocol, message, kind)
        if inbox.full():
            protocol.session.backlogged = True  # our database is behind, not the worker
        try:
            await inbox.put(message)
        finally:
            protocol.session.backlogged = False

    async def _store_heartbeats(self, protocol: WorkerProtocol) -> None:
        """Store the latest heartbeat read, until none is left (latest wins)."""
        while protocol.heartbeat_due is not None:
            sent_at, prefetch = protocol.heartbeat_due
            protocol.heartbeat_due = None
            await self._guarded(protocol, "heartbeat", protocol.heartbeat(sent_at, prefetch))

    async def _guarded(self, protocol: WorkerProtocol, kind: str, work: Awaitable[None]) -> None:
        if not self.database_up():
            close = getattr(work, "close", None)
            if close is not None:
                close()  # never awaited: no "coroutine was never awaited" warning
            # Known and said once by the database watch: one line per message would be
            # dozens per outage (98 over the chaos suite's 5 outages). DEBUG only.
            logger.debug(
                "worker message %s refused: the database is away",
                kind,
                extra={"worker_id": str(protocol.worker_id)},
            )
            self._unstored(protocol, kind)
            return
        try:
            await work
        except HodeiError as err:
            protocol.session.send(RejectedNotice(None, err.code, one_line(str(err))))
        except DATABASE_DOWN as err:
            # The database went away (a restart, an outage): not a bug, no traceback.
            # The worker resends what was not confirmed once it reads UNAVAILABLE; its
            # silence meanwhile proves nothing (hodei.server.recovery).
            logger.warning(
                "worker message %s not applied, database unavailable: %s",
                kind,
                one_line(str(err)),
                extra={"worker_id": str(protocol.worker_id)},
            )
            self._unstored(protocol, kind)
        except Exception:
            # A bug or the database: answer this message, keep the stream.
            logger.exception(
                "worker message %s failed", kind, extra={"worker_id": str(protocol.worker_id)}
            )
            protocol.session.send(
                RejectedNotice(None, "INTERNAL", f"the server could not apply {kind}")
            )

    def _unstored(self, protocol: WorkerProtocol, kind: str) -> None:
        """A worker message the database was not there to store: counted (a break for
        the recovery loop) and answered UNAVAILABLE, which makes the worker resend."""
        self.services.workers.note_unstored()
        protocol.session.send(
            RejectedNotice(None, "UNAVAILABLE", f"database unavailable; resend {kind}")
        )

    async def _apply_group(
        self, protocol: WorkerProtocol, group: list[workers_pb2.WorkerMessage]
    ) -> None:
        acks: list[AttemptRef] = []
        refusals: list[tuple[AttemptRef, str]] = []
        started: list[AttemptRef] = []
        start_times: list[datetime | None] = []
        results: list[AttemptResult] = []
        for message in group:
            try:
                kind = message.WhichOneof("payload")
                if kind == "ack" and message.ack.accepted:
                    acks.append(ref_from_proto(message.ack.ref))
                elif kind == "ack":
                    refusals.append((ref_from_proto(message.ack.ref), message.ack.reason))
                elif kind == "started":
                    started.append(ref_from_proto(message.started.ref))
                    start_times.append(worker_time(message.started, "started_at"))
                else:
                    results.append(attempt_result(message.result))
            except HodeiError as err:
                protocol.session.send(RejectedNotice(None, err.code, one_line(str(err))))
        await protocol.apply_group(acks, started, results, start_times)
        # A refusal (a job handed back) comes after whatever else the worker said of
        # that attempt; it requeues the job, one at a time.
        for ref, reason in refusals:
            await protocol.ack(ref, False, reason)

    async def _apply(self, protocol: WorkerProtocol, message: workers_pb2.WorkerMessage) -> None:
        kind = message.WhichOneof("payload") or "empty"
        await self._guarded(protocol, kind, self._dispatch(protocol, kind, message))

    async def _dispatch(
        self, protocol: WorkerProtocol, kind: str, message: workers_pb2.WorkerMessage
    ) -> None:
        # Heartbeats never get here: _take applies them as they are read.
        match kind:
            case "draining":
                await protocol.draining()
            case "goodbye":
                await protocol.goodbye(message.goodbye.reason)
            case "hello":
                raise InvalidArgument("Hello was already received on this stream")
            case "batch":
                raise InvalidArgument("a WorkerBatch cannot hold another batch")
            case _:
                raise InvalidArgument("empty worker message")


def _remember_ack(
    protocol: WorkerProtocol, message: workers_pb2.WorkerMessage, kind: str | None
) -> None:
    """The worker took an attempt: read, if not yet stored (hodei.server.recovery)."""
    if kind == "ack" and message.ack.accepted:
        proto_ref = message.ack.ref
    elif kind == "started":
        proto_ref = message.started.ref
    elif kind == "result":
        proto_ref = message.result.ref
    else:
        return
    try:
        protocol.session.ack_read(ref_from_proto(proto_ref))
    except HodeiError:
        return  # rejected with its reason when the message is applied


def malformed(message: object, where: str = "a message") -> str:
    """Why a message read after Hello cannot be taken, or "" when it can."""
    if isinstance(message, Undecodable):
        return f"{where} after Hello: {message.reason}"
    if isinstance(message, workers_pb2.WorkerMessage) and message.WhichOneof("payload") is None:
        return f"{where} after Hello has no payload (an empty hodei.api.v1.WorkerMessage)"
    return ""
