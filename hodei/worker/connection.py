"""The reconnecting stream client (Hatchet action_listener style).

One gRPC channel with HTTP/2 keepalive for the life of the process; on it,
Register then WorkerStream, over and over until stopped. Each status code that
ends a stream is handled on purpose:

- UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, RESOURCE_EXHAUSTED,
  CANCELLED (by the server), or a clean end of stream: reconnect after a capped
  exponential backoff with jitter;
- NOT_FOUND (the server does not know our worker id, e.g. its database was
  reset): Register again, which gives a new identity, then reconnect;
- INVALID_ARGUMENT: a protocol bug on our side; logged as ERROR, then back off;
- anything else (UNIMPLEMENTED, PERMISSION_DENIED...): logged as ERROR, back off.

The backoff resets once a stream has been welcomed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import grpc

from hodei.api.v1 import workers_pb2, workers_pb2_grpc
from hodei.client.channel import MIB, channel_options, token_metadata
from hodei.client.rpc_errors import tls_problem
from hodei.settings import Settings
from hodei.tls import aio_channel, client_tls
from hodei.worker.agent import WorkerAgent, WorkerUnknown
from hodei.worker.wire import encode_batch, serialize

logger = logging.getLogger(__name__)

STREAM_METHOD = "/hodei.api.v1.WorkerAgentService/WorkerStream"
#: First reconnect delay; doubles per failure up to settings.reconnect_max_backoff.
BASE_BACKOFF = 0.1
REGISTER_TIMEOUT = 10.0
#: How long the server may take to answer Hello with Welcome.
WELCOME_TIMEOUT = 15.0
#: Messages ready together are written as one WorkerBatch up to this size; with a
#: full log batch (2 MiB) behind it, a group stays far under the server's limit.
GROUP_BYTES = 256 * 1024
GROUP_MESSAGES = 256

_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.ABORTED,
    }
)


def stream_channel_options(settings: Settings) -> list[tuple[str, int]]:
    """The worker's channel (hodei.client.channel): keepalive from the settings, and
    grpc's own reconnect kept short, since StreamClient paces the retries itself."""
    return channel_options(
        settings.server.keepalive_time_ms,
        settings.server.keepalive_timeout_ms,
        max_receive_bytes=16 * MIB,
        reconnect_max_backoff_ms=int(settings.worker.reconnect_max_backoff * 1000),
    )


def backoff_delay(failures: int, cap: float, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with jitter: in [d/2, d], d = min(cap, base * 2^(n-1))."""
    rng = rng or random.Random()
    delay = min(cap, BASE_BACKOFF * (2 ** max(failures - 1, 0)))
    return delay / 2 + rng.random() * delay / 2


class _StreamLost(Exception):
    """The stream ended for a reason found on our side (no Welcome, write failed)."""


class StreamClient:
    def __init__(self, settings: Settings, agent: WorkerAgent) -> None:
        self.settings = settings
        self.agent = agent
        #: The token on every call (HODEI_TOKEN); never logged.
        self._metadata = token_metadata(settings.client.token)
        self._channel: grpc.aio.Channel | None = None
        self._call: grpc.aio.StreamStreamCall | None = None
        self._closing = False  # close() was called: half-close, do not reconnect
        self._half_close = asyncio.Event()
        self._session_done = asyncio.Event()
        self._session_done.set()
        self.connects = 0  # streams welcomed so far (for logs and tests)
        self.tls = client_tls(settings.tls)

    async def run(self, stop: asyncio.Event) -> None:
        """Connect and stay connected until `stop` is set."""
        self._channel = aio_channel(
            self.settings.server.address, stream_channel_options(self.settings), self.tls
        )
        stub = workers_pb2_grpc.WorkerAgentServiceStub(self._channel)
        stream = self._channel.stream_stream(
            STREAM_METHOD,
            request_serializer=serialize,
            response_deserializer=workers_pb2.ServerMessage.FromString,
        )
        failures = 0
        need_register = True
        stopper = asyncio.create_task(self._cancel_on(stop), name="stream-stopper")
        try:
            while not stop.is_set() and not self._closing:
                welcomed = False
                try:
                    if need_register:
                        response = await stub.Register(
                            self.agent.register_request(),
                            timeout=REGISTER_TIMEOUT,
                            metadata=self._metadata,
                        )
                        self.agent.on_registered(response)
                        need_register = False
                    welcomed = await self._session(stream)
                    if not stop.is_set() and not self._closing:
                        logger.warning(
                            "server closed the worker stream; reconnecting", extra=self._fields()
                        )
                except grpc.aio.AioRpcError as err:
                    if stop.is_set() or self._closing:
                        break
                    what = "Register" if need_register else "worker stream"
                    need_register = self._on_status(err, what) or need_register
                except WorkerUnknown as err:
                    logger.warning(
                        "server does not know this worker (%s); registering again",
                        err,
                        extra=self._fields(),
                    )
                    need_register = True
                except _StreamLost as err:
                    logger.warning("worker stream lost: %s", err, extra=self._fields())
                except asyncio.CancelledError:
                    # grpc raises CancelledError from a call we cancelled ourselves
                    # (stop): that ends the loop; a cancellation of this task goes on.
                    task = asyncio.current_task()
                    if (task is not None and task.cancelling()) or not stop.is_set():
                        raise
                    break
                finally:
                    self.agent.on_disconnected()
                    if self._call is not None:
                        self._call.cancel()
                        self._call = None
                if stop.is_set() or self._closing:
                    break
                failures = 1 if welcomed else failures + 1
                delay = backoff_delay(failures, self.settings.worker.reconnect_max_backoff)
                logger.info(
                    "reconnecting in %.2f s (failure %d)", delay, failures, extra=self._fields()
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            stopper.cancel()
            await self._channel.close()

    def _fields(self) -> dict[str, object]:
        return {"worker_id": self.agent.worker_id or None}

    def _on_status(self, err: grpc.aio.AioRpcError, what: str) -> bool:
        """Log a stream's end by status code; True when we must register again."""
        code = err.code()
        detail = err.details() or ""
        if code == grpc.StatusCode.NOT_FOUND:
            logger.warning(
                "server does not know this worker (%s); registering again",
                detail,
                extra=self._fields(),
            )
            return True
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            logger.error(
                "server refused our message as invalid (protocol bug): %s",
                detail,
                extra=self._fields(),
            )
        elif (
            problem := tls_problem(code, detail, self.settings.server.address, self.tls)
        ) is not None:
            # A TLS mismatch will not pass by itself; keep trying in case the server
            # is being reconfigured, but say what is wrong.
            logger.error("%s failed: %s", what, problem, extra=self._fields())
        elif code in _TRANSIENT:
            logger.warning("%s ended: %s %s", what, code.name, detail, extra=self._fields())
        else:
            logger.error("%s failed: %s %s", what, code.name, detail, extra=self._fields())
        return False

    async def _cancel_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        if self._call is not None:
            self._call.cancel()

    async def close(self, seconds: float) -> None:
        """Graceful end: half-close the stream and wait for the server to end it, which
        it does after applying everything we wrote. Then stop without reconnecting."""
        self._closing = True
        self._half_close.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._session_done.wait(), seconds)

    async def _session(self, stream: grpc.aio.StreamStreamMultiCallable) -> bool:
        """One stream from Hello to its end. Returns whether it was welcomed."""
        self._session_done.clear()
        try:
            return await self._session_inner(stream)
        finally:
            self._session_done.set()

    async def _session_inner(self, stream: grpc.aio.StreamStreamMultiCallable) -> bool:
        call = stream(metadata=self._metadata)
        self._call = call
        welcome = asyncio.Event()
        writer = asyncio.create_task(self._write(call, welcome), name="stream-writer")
        welcomed = False
        try:
            while True:
                reader = asyncio.ensure_future(call.read())
                if not writer.done():
                    await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
                    if writer.done() and writer.exception() is not None:
                        reader.cancel()
                        writer.result()  # raises _StreamLost / AioRpcError
                # A writer that returned has half-closed: read on until the server ends.
                message = await reader
                if message is grpc.aio.EOF:
                    code = await call.code()
                    if code != grpc.StatusCode.OK:
                        raise _StreamLost(f"stream ended with {code.name}")
                    return welcomed
                assert isinstance(message, workers_pb2.ServerMessage)
                if message.WhichOneof("payload") == "welcome":
                    welcomed = True
                    self.connects += 1
                    if self.connects > 1:  # a stream again after one was lost
                        self.agent.metrics.reconnects.inc()
                    self.agent.handle(message)
                    welcome.set()
                else:
                    self.agent.handle(message)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    def _group(self, first: workers_pb2.WorkerMessage | bytes) -> workers_pb2.WorkerMessage | bytes:
        """`first` and the messages ready behind it, as one WorkerBatch when the server
        reads batches: one gRPC write (and one server read) instead of several. Stops
        past GROUP_BYTES, so a group stays under the server's receive limit even when
        its last message is a full log batch."""
        if not self.agent.batches:
            return first
        parts = [serialize(first)]
        size = len(parts[0])
        while size < GROUP_BYTES and len(parts) < GROUP_MESSAGES:
            more = self.agent.poll_outgoing()
            if more is None:
                break
            parts.append(serialize(more))
            size += len(parts[-1])
        return parts[0] if len(parts) == 1 else encode_batch(parts)

    async def _write(self, call: grpc.aio.StreamStreamCall, welcome: asyncio.Event) -> None:
        try:
            await self._write_all(call, welcome)
        except asyncio.InvalidStateError:
            # grpc's "RPC already finished": the server ended the stream (it was killed,
            # or restarted) while we wrote. A lost stream like any other: reconnect with
            # the same identity. Uncaught, it ended the stream task, and the restarted
            # task registered a new worker.
            raise _StreamLost("the stream ended while the worker wrote to it") from None

    async def _write_all(self, call: grpc.aio.StreamStreamCall, welcome: asyncio.Event) -> None:
        await call.write(self.agent.hello())
        try:
            await asyncio.wait_for(welcome.wait(), WELCOME_TIMEOUT)
        except TimeoutError:
            raise _StreamLost(f"no Welcome within {WELCOME_TIMEOUT:g} s") from None
        closing = asyncio.ensure_future(self._half_close.wait())
        try:
            while True:
                nxt = asyncio.ensure_future(self.agent.next_outgoing())
                await asyncio.wait({nxt, closing}, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    nxt.cancel()
                    await call.done_writing()
                    return
                await call.write(self._group(nxt.result()))
                self.agent.on_written()
        finally:
            closing.cancel()
