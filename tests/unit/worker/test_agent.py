"""The worker agent's protocol logic with real child processes and no network:
the test plays the server by calling `handle()` and reading `next_outgoing()`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.processes import alive
from harness.waits import wait_until_async
from hodei.api.v1 import workers_pb2
from hodei.worker.agent import WorkerUnknown
from hodei.worker.attempt import LOG_WINDOW_BATCHES
from hodei.worker.shutdown import drain
from tests.unit.worker.agent_play import (
    batch_lines,
    kinds,
    lines,
    make_agent,
    next_message,
    ref,
    run,
    stop_agents,
    until_result,
)

__all__ = ["stop_agents"]  # the autouse fixture


async def test_messages_come_in_protocol_order_with_every_line() -> None:
    agent = make_agent(worker={"log_batch_lines": 7})
    run(agent, ["/bin/sh", "-c", "seq 1 20; echo oops >&2; exit 4"])
    seen = await until_result(agent)
    # The process starts before the first write, so JobStarted alone acks the attempt
    # (docs/worker-protocol.md): one message and one server transaction less per job.
    assert kinds(seen) == ["started", "logs", "result"]
    assert seen[0].started.pid > 0
    got = lines(seen)
    assert [i for i, _, _ in got] == list(range(21))
    assert [text for _, err, text in got if not err] == [str(i) for i in range(1, 21)]
    assert [text for _, err, text in got if err] == ["oops"]
    assert all(len(batch_lines(m.logs)) <= 7 for m in seen if m.WhichOneof("payload") == "logs")
    result = seen[-1].result
    assert result.outcome == workers_pb2.JOB_OUTCOME_FAILED
    assert (result.has_exit_code, result.exit_code, result.total_lines) == (True, 4, 21)
    agent.handle(
        workers_pb2.ServerMessage(
            persisted=workers_pb2.Persisted(ref=ref(), next_line=21, result_persisted=True)
        )
    )
    assert agent.held == []


async def test_small_output_is_flushed_by_time_not_held_for_a_full_batch() -> None:
    agent = make_agent(worker={"log_batch_lines": 1000, "log_batch_interval": 0.05})
    run(agent, ["/bin/sh", "-c", "echo early; sleep 1.5; echo late"])
    assert (await next_message(agent)).WhichOneof("payload") == "started"  # also the ack
    t0 = time.monotonic()
    msg = await next_message(agent)
    assert batch_lines(msg.logs) == [(False, "early")]
    assert time.monotonic() - t0 < 1.0  # not waiting for the job to end


async def test_log_window_stops_sending_until_the_server_confirms() -> None:
    agent = make_agent(worker={"log_batch_lines": 10})
    run(agent, ["/bin/sh", "-c", f"seq 1 {10 * (LOG_WINDOW_BATCHES + 5)}"])  # beyond the window
    sent = []
    for _ in range(1 + LOG_WINDOW_BATCHES):
        sent.append(await next_message(agent))
    assert [m.WhichOneof("payload") for m in sent] == ["started"] + ["logs"] * LOG_WINDOW_BATCHES
    with pytest.raises(TimeoutError):
        await next_message(agent, seconds=0.5)  # window full
    agent.handle(
        workers_pb2.ServerMessage(persisted=workers_pb2.Persisted(ref=ref(), next_line=10))
    )
    more = await next_message(agent)
    assert more.logs.first_line == 10 * LOG_WINDOW_BATCHES


async def test_reconnect_resends_everything_unconfirmed_from_persisted_next_line() -> None:
    agent = make_agent(worker={"log_batch_lines": 5})
    run(agent, ["/bin/sh", "-c", "seq 1 12"])
    first = await until_result(agent, persist=False)
    assert lines(first)[-1][0] == 11
    # The server confirmed only the first 5 lines before the stream broke.
    agent.handle(workers_pb2.ServerMessage(persisted=workers_pb2.Persisted(ref=ref(), next_line=5)))
    agent.on_disconnected()
    hello = agent.hello()
    assert list(hello.hello.running) == [ref()]
    agent.on_welcome(workers_pb2.Welcome(worker_id="w-test"))
    again = await until_result(agent, persist=True)
    # The process is known to have started: JobStarted alone also acks the attempt.
    assert kinds(again) == ["started", "logs", "result"]
    assert [i for i, _, _ in lines(again)] == list(range(5, 12))
    assert again[-1].result.total_lines == 12


async def test_refused_when_no_slot_is_free_and_when_draining() -> None:
    agent = make_agent(worker={"slots": 1})
    run(agent, ["/bin/sh", "-c", "sleep 30"])
    run(agent, ["/bin/true"], job="00000000-0000-4000-8000-0000000000bb")
    msgs = [await next_message(agent) for _ in range(2)]  # the refusal, the first's start
    assert sorted(m.WhichOneof("payload") or "" for m in msgs) == ["ack", "started"]
    refusals = [m.ack for m in msgs if m.WhichOneof("payload") == "ack" and not m.ack.accepted]
    assert len(refusals) == 1 and "no free slot" in refusals[0].reason
    agent.draining = True
    run(agent, ["/bin/true"], job="00000000-0000-4000-8000-0000000000cc")
    refused = await next_message(agent)
    assert refused.ack.reason == "worker is shutting down"
    await drain(agent, grace=0.0)  # stops the sleeping job
    assert agent.running_count == 0


async def test_rejected_attempt_kills_the_process_and_drops_its_buffers(tmp_path: Path) -> None:
    agent = make_agent()
    pidfile = tmp_path / "pid"
    run(agent, ["/bin/sh", "-c", f"echo $$ > {pidfile}; sleep 100 & wait"])
    assert (await next_message(agent)).WhichOneof("payload") == "started"
    # The shell wrote its pid: it is running for sure.
    await wait_until_async("the job to write its pid", lambda: _read(pidfile), 5, poll_s=0.02)
    agent.handle(
        workers_pb2.ServerMessage(
            rejected=workers_pb2.Rejected(
                ref=ref(), code="FAILED_PRECONDITION", message="attempt superseded"
            )
        )
    )
    assert agent.held == []
    pid = int(_read(pidfile))
    await wait_until_async("the rejected job's process to end", lambda: not alive(pid), 5)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


async def test_unknown_worker_rejection_asks_for_a_new_registration() -> None:
    agent = make_agent()
    with pytest.raises(WorkerUnknown):
        agent.handle(
            workers_pb2.ServerMessage(
                rejected=workers_pb2.Rejected(
                    code="NOT_FOUND", message="worker w-test is not registered"
                )
            )
        )


async def test_fault_drop_logs_sends_no_lines_and_zero_total() -> None:
    agent = make_agent(faults={"testing": True, "drop_logs": True})
    run(agent, ["/bin/sh", "-c", "seq 1 50"])
    seen = await until_result(agent)
    # With no lines the start may go out with the result when the process ends before
    # its JobStarted is written (a loaded machine); either way the start is reported.
    assert kinds(seen) in (["started", "result"], ["result"])
    assert seen[0].WhichOneof("payload") == "started" or seen[-1].result.HasField("started_at")
    assert seen[-1].result.total_lines == 0
    assert seen[-1].result.outcome == workers_pb2.JOB_OUTCOME_SUCCEEDED


async def test_unconfirmed_output_is_capped_and_the_job_waits_on_its_writes() -> None:
    agent = make_agent(worker={"log_buffer_bytes": 1024, "log_batch_lines": 2000})
    run(agent, ["/bin/sh", "-c", "seq 1 300000"])  # about 2 MB of output
    sent = 0
    with pytest.raises(TimeoutError):  # nothing confirmed: sending stops by itself
        while True:
            await next_message(agent, seconds=1.0)
            sent += 1
    assert 1 < sent <= 1 + LOG_WINDOW_BATCHES  # JobStarted, then at most the window
    (att,) = agent.held
    assert att.running, "the job should be blocked on its output"
    assert att.logs.held_bytes < 600_000  # one read chunk over the cap, not the 2 MB
    # Once the server confirms, the job goes on to the end with every line.
    agent.handle(
        workers_pb2.ServerMessage(
            persisted=workers_pb2.Persisted(ref=ref(), next_line=att.logs.sent)
        )
    )
    rest = await until_result(agent, persist=True)
    assert rest[-1].result.total_lines == 300000
    assert rest[-1].result.outcome == workers_pb2.JOB_OUTCOME_SUCCEEDED


async def test_a_command_that_cannot_start_is_acked_then_failed_without_started() -> None:
    agent = make_agent()
    run(agent, ["/no/such/program"])
    seen = await until_result(agent)
    assert kinds(seen) == ["ack", "result"]
    assert seen[0].ack.accepted
    assert seen[-1].result.outcome == workers_pb2.JOB_OUTCOME_FAILED
    assert "cannot start '/no/such/program'" in seen[-1].result.error


def test_a_draining_worker_says_so_again_on_every_new_stream() -> None:
    # The Draining sent when the stop began is dropped with a lost stream, and the Hello
    # of the next one makes the worker READY again on the server: repeat it.
    agent = make_agent()
    agent.draining = True
    agent.on_disconnected()
    agent.on_welcome(workers_pb2.Welcome(worker_id="w-test", server_id="s2"))
    message = agent.poll_outgoing()
    assert isinstance(message, workers_pb2.WorkerMessage)
    assert message.WhichOneof("payload") == "draining"
    # A worker that is not stopping sends nothing of the kind.
    fresh = make_agent()
    fresh.on_disconnected()
    fresh.on_welcome(workers_pb2.Welcome(worker_id="w-test", server_id="s2"))
    assert fresh.poll_outgoing() is None


async def test_prefetch_holds_a_job_beyond_the_slot_and_starts_it_when_the_slot_frees() -> None:
    agent = make_agent(worker={"slots": 1, "prefetch": 1})
    run(agent, ["/bin/sh", "-c", "sleep 0.3"])
    run(agent, ["/bin/true"], job="00000000-0000-4000-8000-0000000000bb")
    run(agent, ["/bin/true"], job="00000000-0000-4000-8000-0000000000cc")
    assert agent.running_count == 1 and agent.prefetched_count == 1
    kinds = [await next_message(agent) for _ in range(3)]
    acks = [m.ack for m in kinds if m.WhichOneof("payload") == "ack"]
    # The second is held (accepted at once); the third finds slot and prefetch full.
    assert sorted((a.ref.job_id[-2:], a.accepted) for a in acks) == [("bb", True), ("cc", False)]
    seen: list[str] = []
    while "00000000-0000-4000-8000-0000000000bb" not in seen:
        message = await next_message(agent, seconds=5)
        kind = message.WhichOneof("payload")
        if kind == "started":
            seen.append(message.started.ref.job_id)
        elif kind == "result" and message.result.HasField("started_at"):
            # `true` may end before its start is written: the result carries the start
            # (docs/worker-protocol.md, "Held start"), which happens on a loaded machine.
            seen.append(message.result.ref.job_id)
    assert agent.prefetched_count == 0


async def test_the_adaptive_prefetch_tells_the_server_when_it_changes() -> None:
    agent = make_agent(worker={"slots": 2, "prefetch": None})
    assert agent.prefetch == 2  # where it starts: the slots
    run(agent, ["/bin/true"])
    heartbeat = None
    for _ in range(6):
        message = await next_message(agent, seconds=5)
        if message.WhichOneof("payload") == "heartbeat":
            heartbeat = message.heartbeat
            break
    assert heartbeat is not None and heartbeat.HasField("prefetch")
    assert heartbeat.prefetch == agent.prefetch > 2  # a short job: it holds more
