"""The reconnecting stream client against a real grpc.aio server on a free port whose
WorkerStream ends each stream with a scripted status: how each code is handled."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from hodei.api.v1 import workers_pb2, workers_pb2_grpc
from hodei.settings import Settings
from hodei.worker.agent import WorkerAgent
from hodei.worker.connection import (
    StreamClient,
    _StreamLost,
    backoff_delay,
    stream_channel_options,
)


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    for failures, full in [(1, 0.1), (2, 0.2), (3, 0.4), (6, 3.2), (7, 5.0), (50, 5.0)]:
        for _ in range(20):
            delay = backoff_delay(failures, cap=5.0, rng=rng)
            assert full / 2 <= delay <= full


def test_channel_has_http2_keepalive() -> None:
    options = dict(stream_channel_options(Settings(server={"keepalive_time_ms": 10_000})))
    assert options["grpc.keepalive_time_ms"] == 10_000
    assert options["grpc.keepalive_timeout_ms"] == 60_000
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.max_pings_without_data"] == 0


class ScriptedServer(workers_pb2_grpc.WorkerAgentServiceServicer):
    """Each stream: read Hello, then end with the next scripted outcome."""

    def __init__(self, script: list[grpc.StatusCode | str]) -> None:
        self.script = script
        self.registered: list[str] = []
        self.hellos: list[str] = []
        self.done = asyncio.Event()

    async def Register(self, request: Any, context: Any) -> workers_pb2.RegisterResponse:
        worker_id = f"w-{len(self.registered) + 1}"
        self.registered.append(worker_id)
        return workers_pb2.RegisterResponse(worker_id=worker_id, heartbeat_interval_ms=60_000)

    async def WorkerStream(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        hello = await context.read()
        self.hellos.append(hello.hello.worker_id)
        step = self.script.pop(0) if self.script else "hold"
        if not self.script:
            self.done.set()
        if isinstance(step, grpc.StatusCode):
            await context.abort(step, f"scripted {step.name}")
        welcome = workers_pb2.Welcome(worker_id=hello.hello.worker_id)
        yield workers_pb2.ServerMessage(welcome=welcome)
        if step == "close":
            return  # a clean end of stream (status OK)
        await asyncio.Event().wait()  # hold the stream open


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[ScriptedServer, str]]:
    script: list[grpc.StatusCode | str] = []
    servicer = ScriptedServer(script)
    server = grpc.aio.server()
    workers_pb2_grpc.add_WorkerAgentServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, f"127.0.0.1:{port}"
    await server.stop(0)


async def run_client(address: str, servicer: ScriptedServer) -> WorkerAgent:
    settings = Settings(server={"address": address}, worker={"reconnect_max_backoff": 0.2})
    agent = WorkerAgent(settings, dict(os.environ))
    stop = asyncio.Event()
    client = StreamClient(settings, agent)
    task = asyncio.create_task(client.run(stop))
    try:
        await asyncio.wait_for(servicer.done.wait(), 10)
        await asyncio.sleep(0.3)  # let the last stream settle
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    return agent


async def test_each_status_code_is_handled(
    scripted: tuple[ScriptedServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    servicer, address = scripted
    caplog.set_level(logging.INFO, logger="hodei.worker")
    servicer.script[:] = [
        grpc.StatusCode.UNAVAILABLE,  # transient: same identity, reconnect
        grpc.StatusCode.INTERNAL,  # transient
        "close",  # welcomed, then a clean end: reconnect
        grpc.StatusCode.NOT_FOUND,  # unknown worker: Register again (new id)
        grpc.StatusCode.INVALID_ARGUMENT,  # protocol bug: ERROR, back off, retry
        "hold",
    ]
    agent = await run_client(address, servicer)
    assert servicer.registered == ["w-1", "w-2"]
    assert servicer.hellos == ["w-1", "w-1", "w-1", "w-1", "w-2", "w-2"]
    assert agent.worker_id == "w-2"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "protocol bug" in errors[0]
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert "worker stream ended: UNAVAILABLE" in messages
    assert "registering again" in messages
    assert "server closed the worker stream; reconnecting" in messages


async def test_a_write_to_a_finished_rpc_is_a_lost_stream_not_a_crash() -> None:
    """grpc raises asyncio.InvalidStateError ('RPC already finished') from write() once
    the server has ended the call; the client must treat it as a lost stream (and
    reconnect under the same identity), not let it end the stream task."""

    class FinishedCall:
        async def write(self, message: Any) -> None:
            raise asyncio.InvalidStateError("RPC already finished.")

    settings = Settings(server={"address": "127.0.0.1:9"})
    client = StreamClient(settings, WorkerAgent(settings, dict(os.environ)))
    with pytest.raises(_StreamLost, match="ended while the worker wrote"):
        await client._write(FinishedCall(), asyncio.Event())
