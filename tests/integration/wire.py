"""Helpers for tests that speak the gRPC API directly (no worker or CLI code)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from harness.waits import wait_for_async
from hodei.api.v1 import (
    common_pb2,
    jobs_pb2,
    jobs_pb2_grpc,
    logs_pb2_grpc,
    platform_pb2_grpc,
    workers_pb2,
    workers_pb2_grpc,
)
from hodei.client.channel import token_interceptors
from tests.integration.tokens import server_token


class Stubs:
    def __init__(
        self, address: str, options: list[tuple[str, int]] | None = None, token: str | None = None
    ) -> None:
        """`token`: None for the admin token of the in-process server at `address` (if
        any); "" for none."""
        token = server_token(address) if token is None else token
        self.channel = grpc.aio.insecure_channel(
            address, options=options, interceptors=token_interceptors(token)
        )
        self.jobs = jobs_pb2_grpc.JobExecutionServiceStub(self.channel)
        self.logs = logs_pb2_grpc.LogStreamServiceStub(self.channel)
        self.workers = workers_pb2_grpc.WorkerAgentServiceStub(self.channel)
        self.platform = platform_pb2_grpc.PlatformServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> Stubs:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def queue(self, command: list[str], **spec: Any) -> jobs_pb2.Job:
        response = await self.jobs.QueueJob(
            jobs_pb2.QueueJobRequest(spec=jobs_pb2.JobSpec(command=command, **spec))
        )
        return response.job

    async def wait_state(self, job_id: str, state: int, seconds: float = 10.0) -> jobs_pb2.Job:
        job: jobs_pb2.Job = await wait_for_async(
            f"job {job_id} to be {common_pb2.JobState.Name(state)}",
            lambda: self.jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job_id)),
            lambda job: job.state == state,
            timeout_s=seconds,
            describe=lambda job: common_pb2.JobState.Name(job.state),
        )
        return job


class FakeWorkerStream:
    """A worker speaking WorkerStream by hand: the protocol under test, not the agent."""

    def __init__(self, stubs: Stubs, worker_id: str, secret: str = "") -> None:
        self.worker_id = worker_id
        #: RegisterResponse.session_secret: a Hello for worker_id must carry it.
        self.secret = secret
        self.outgoing: asyncio.Queue[workers_pb2.WorkerMessage | None] = asyncio.Queue()
        self.call = stubs.workers.WorkerStream(self._requests())
        # One reader for the call's life: cancelling a pending read would cancel the RPC.
        self.incoming: asyncio.Queue[Any] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read_all())
        self.unbatched: list[workers_pb2.ServerMessage] = []
        self.batches_received = 0

    async def _read_all(self) -> None:
        try:
            while True:
                message = await self.call.read()
                await self.incoming.put(message)
                if message is grpc.aio.EOF:
                    return
        except BaseException as exc:  # the RPC's error status, for receive() to raise
            await self.incoming.put(exc)
        finally:
            # The call is over (EOF, an error status, or cancelled): end the request
            # generator too, or gRPC's task iterating it stays pending until collected.
            self.outgoing.put_nowait(None)

    async def _requests(self) -> AsyncIterator[workers_pb2.WorkerMessage]:
        while True:
            message = await self.outgoing.get()
            if message is None:
                return
            yield message

    @classmethod
    async def connect(
        cls,
        stubs: Stubs,
        slots: int = 1,
        running: list[common_pb2.JobRef] | None = None,
        worker_id: str | None = None,
        batches: bool = False,
        secret: str = "",
    ) -> tuple[FakeWorkerStream, workers_pb2.Welcome]:
        """A new registration; or, with `worker_id` and its `secret`, a reconnection."""
        if worker_id is None:
            reg = await stubs.workers.Register(
                workers_pb2.RegisterRequest(name="fake", hostname="localhost", pid=1, slots=slots)
            )
            worker_id, secret = reg.worker_id, reg.session_secret
        stream = cls(stubs, worker_id, secret)
        await stream.send(
            hello=workers_pb2.Hello(
                worker_id=worker_id,
                slots=slots,
                running=running or [],
                batches=batches,
                session_secret=secret,
            )
        )
        first = await stream.receive()
        assert first.WhichOneof("payload") == "welcome", first
        return stream, first.welcome

    async def send(self, **payload: Any) -> None:
        await self.outgoing.put(workers_pb2.WorkerMessage(**payload))

    async def receive(self, seconds: float = 10.0) -> workers_pb2.ServerMessage:
        """The next server message; the messages of a ServerBatch one by one."""
        if self.unbatched:
            return self.unbatched.pop(0)
        message = await asyncio.wait_for(self.incoming.get(), seconds)
        if isinstance(message, BaseException):
            raise message
        assert message is not grpc.aio.EOF, "server closed the stream"
        if message.WhichOneof("payload") == "batch":
            self.batches_received += 1
            self.unbatched = list(message.batch.messages)
            return self.unbatched.pop(0)
        return message

    async def receive_kind(self, kind: str, seconds: float = 10.0) -> Any:
        while True:
            message = await self.receive(seconds)
            if message.WhichOneof("payload") == kind:
                return getattr(message, kind)

    async def close(self) -> None:
        """End our side (the request generator returns), let the server end the call,
        and cancel it only if it does not: a call cancelled while gRPC still iterates
        the generator leaves a pending task that asyncio reports (at ERROR) whenever it
        is collected, possibly during a later test that checks for errors."""
        await self.outgoing.put(None)
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self._reader), 2.0)
        self.call.cancel()
        self._reader.cancel()
