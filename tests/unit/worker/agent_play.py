"""Playing the server to a worker agent with no network: an agent on test settings,
RunJob in, the messages it writes out (`next_message`), and the autouse fixture that
stops every agent's jobs after its test. Shared by the agent's unit tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hodei.api.v1 import common_pb2, workers_pb2
from hodei.settings import Settings
from hodei.worker.agent import WorkerAgent
from hodei.worker.shutdown import drain

JOB = "00000000-0000-4000-8000-0000000000aa"


_AGENTS: list[WorkerAgent] = []


def make_agent(**overrides: Any) -> WorkerAgent:
    """An agent on Settings with these overrides by group (`worker={"slots": 2}`). No
    prefetch and no start hold unless a test asks: these tests read the stream's
    messages in order; an adaptive prefetch adds a Heartbeat when it changes
    (test_prefetch_* below), and a held start may go out with the result
    (tests/unit/worker/test_start_hold.py)."""
    overrides["worker"] = {
        "kill_grace": 0.5,
        "prefetch": 0,
        "start_hold": 0,
        **overrides.get("worker", {}),
    }
    agent = WorkerAgent(Settings(**overrides), dict(os.environ))
    agent.worker_id = "w-test"
    agent.on_welcome(workers_pb2.Welcome(worker_id="w-test", server_id="s"))
    _AGENTS.append(agent)
    return agent


@pytest.fixture(autouse=True)
async def stop_agents() -> AsyncIterator[None]:
    """No job process may outlive its test."""
    yield
    while _AGENTS:
        agent = _AGENTS.pop()
        await drain(agent, grace=0.0)
        tasks = [a.task for a in agent.held if a.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)


def ref(attempt: int = 1, job: str = JOB) -> common_pb2.JobRef:
    return common_pb2.JobRef(job_id=job, attempt=attempt)


def run(
    agent: WorkerAgent, command: list[str], attempt: int = 1, job: str = JOB, **kw: Any
) -> None:
    agent.handle(
        workers_pb2.ServerMessage(
            run=workers_pb2.RunJob(ref=ref(attempt, job), command=command, **kw)
        )
    )


async def next_message(agent: WorkerAgent, seconds: float = 5.0) -> workers_pb2.WorkerMessage:
    raw = await asyncio.wait_for(agent.next_outgoing(), seconds)
    if isinstance(raw, bytes):
        return workers_pb2.WorkerMessage.FromString(raw)
    return raw


async def until_result(agent: WorkerAgent, persist: bool = True) -> list[workers_pb2.WorkerMessage]:
    """Messages up to the JobResult, confirming every LogBatch like the server does."""
    seen: list[workers_pb2.WorkerMessage] = []
    while True:
        msg = await next_message(agent)
        seen.append(msg)
        kind = msg.WhichOneof("payload")
        if kind == "logs" and persist:
            end = msg.logs.first_line + len(batch_lines(msg.logs))
            agent.handle(
                workers_pb2.ServerMessage(
                    persisted=workers_pb2.Persisted(ref=msg.logs.ref, next_line=end)
                )
            )
        if kind == "result":
            return seen


def kinds(messages: list[workers_pb2.WorkerMessage]) -> list[str]:
    out: list[str] = []
    for m in messages:
        kind = m.WhichOneof("payload") or ""
        if not out or out[-1] != kind or kind != "logs":
            out.append(kind)
    return out


def batch_lines(batch: workers_pb2.LogBatch) -> list[tuple[bool, str]]:
    """(is_stderr, line) of a LogBatch, in order (the worker sends segments)."""
    return [(e.is_stderr, e.line) for e in batch.entries] + [
        (seg.is_stderr, line) for seg in batch.segments for line in seg.lines
    ]


def lines(messages: list[workers_pb2.WorkerMessage]) -> list[tuple[int, bool, str]]:
    return [
        (m.logs.first_line + i, err, line)
        for m in messages
        if m.WhichOneof("payload") == "logs"
        for i, (err, line) in enumerate(batch_lines(m.logs))
    ]
