"""The held start (HODEI_WORKER_START_HOLD): a started job's JobStarted waits a few
milliseconds for the process's end; a job that ends meanwhile without output is
reported by its JobResult alone, which carries the start. Real child processes, the
test playing the server (tests/unit/worker/test_agent.py)."""

from __future__ import annotations

import time

from harness.waits import wait_until_async
from hodei.api.v1 import workers_pb2
from tests.unit.worker.agent_play import (
    kinds,
    make_agent,
    next_message,
    run,
    stop_agents,
    until_result,
)

__all__ = ["stop_agents"]  # the autouse fixture


async def test_a_job_that_ends_within_the_hold_is_reported_by_its_result_alone() -> None:
    agent = make_agent(worker={"start_hold": 1.0})
    before = time.time_ns()
    run(agent, ["true"])
    seen = await until_result(agent)
    assert kinds(seen) == ["result"]
    result = seen[0].result
    assert result.HasField("started_at") and result.pid > 0
    # The start is the worker's clock when it spawned the process, not when it wrote.
    assert before <= result.started_at.ToNanoseconds() <= time.time_ns()
    assert result.outcome == workers_pb2.JOB_OUTCOME_SUCCEEDED


async def test_a_job_still_running_after_the_hold_sends_its_start_then() -> None:
    agent = make_agent(worker={"start_hold": 0.05})
    began = time.monotonic()
    run(agent, ["sleep", "0.5"])
    first = await next_message(agent)
    waited = time.monotonic() - began
    assert first.WhichOneof("payload") == "started"  # also the ack
    assert first.started.HasField("started_at") and first.started.pid > 0
    assert 0.04 <= waited < 0.45, waited  # held for the hold, not for the job
    result = await next_message(agent)
    assert result.WhichOneof("payload") == "result"
    assert not result.result.HasField("started_at")  # the start went on its own


async def test_a_job_with_output_is_never_folded_its_lines_need_the_start_first() -> None:
    agent = make_agent(worker={"start_hold": 1.0})
    run(agent, ["echo", "hello"])
    seen = await until_result(agent)
    assert kinds(seen) == ["started", "logs", "result"]
    assert not seen[-1].result.HasField("started_at")


async def test_a_reconnect_resends_the_folded_result() -> None:
    agent = make_agent(worker={"start_hold": 1.0})
    run(agent, ["true"])
    first = (await until_result(agent))[-1]
    agent.on_disconnected()
    agent.connected = True
    again = await next_message(agent)
    assert again.WhichOneof("payload") == "result"
    assert again.result.started_at == first.result.started_at


async def test_with_no_hold_the_start_goes_at_once() -> None:
    agent = make_agent(worker={"start_hold": 0})
    run(agent, ["sleep", "0.3"])
    began = time.monotonic()
    first = await next_message(agent)
    assert first.WhichOneof("payload") == "started"
    assert time.monotonic() - began < 0.2


async def test_with_no_hold_a_start_not_yet_written_when_the_job_ends_goes_with_its_result() -> (
    None
):
    # The stream's writer is behind (a loaded machine): by the time it asks for the next
    # message, `true` has ended. One message reports both, as a held start would; CI
    # met this in a test that waited for a JobStarted alone.
    agent = make_agent(worker={"start_hold": 0})
    run(agent, ["true"])
    await wait_until_async("true to end", lambda: agent.running_count == 0, 5, poll_s=0.01)
    seen = await until_result(agent)
    assert kinds(seen) == ["result"]
    assert seen[0].result.HasField("started_at") and seen[0].result.pid > 0
