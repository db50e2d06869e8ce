"""The recovery loop and reconnection, with shortened deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from harness.waits import wait_for_async
from hodei.api.v1 import common_pb2, workers_pb2
from tests.integration.conftest import SpawnWorker
from tests.integration.tokens import server_token
from tests.integration.wire import FakeWorkerStream, Stubs

StartServer = Callable[..., Awaitable[Any]]


pytestmark = pytest.mark.integration


def events_of(db_url: str, aggregate_id: str) -> list[str]:
    """The domain events of a job or a worker, in order."""
    with psycopg.connect(db_url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT event_type FROM domain_events WHERE aggregate_id = %s ORDER BY id",
                (aggregate_id,),
            )
        ]


async def test_unacknowledged_job_goes_back_to_the_queue(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(
        dispatcher={"ack_timeout": 0.5, "poll_interval": 0.2}, recovery={"reaper_interval": 0.1}
    )
    stubs = stubs_for(app.address)
    silent, _ = await FakeWorkerStream.connect(stubs)
    job = await stubs.queue(["true"])
    first = await silent.receive_kind("run")
    assert first.ref.attempt == 1
    # No JobAck: after the deadline the job is requeued and, the worker being free
    # again, offered once more as attempt 2; the stale attempt 1 is fenced off.
    second = await silent.receive_kind("run", seconds=5)
    assert second.ref.job_id == job.id and second.ref.attempt == 2
    await silent.send(started=workers_pb2.JobStarted(ref=first.ref))
    assert (await silent.receive_kind("rejected")).code == "FAILED_PRECONDITION"
    assert events_of(db_url, job.id)[:4] == [
        "JobCreated",
        "JobAssigned",
        "JobRequeued",
        "JobAssigned",
    ]
    await silent.close()


async def test_silent_worker_is_lost_and_its_job_finished_elsewhere(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    app = await start_server(
        recovery={"heartbeat_interval": 0.3, "heartbeat_miss_limit": 2, "reaper_interval": 0.1},
        dispatcher={"poll_interval": 0.2},
    )
    stubs = stubs_for(app.address)
    doomed, _ = await FakeWorkerStream.connect(stubs)
    job = await stubs.queue(["sleep", "60"])
    run = await doomed.receive_kind("run")
    await doomed.send(ack=workers_pb2.JobAck(ref=run.ref, accepted=True))
    await doomed.send(started=workers_pb2.JobStarted(ref=run.ref))
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_RUNNING)
    # The doomed worker never heartbeats: LOST after 0.6 s; a healthy one takes over.
    healthy, _ = await FakeWorkerStream.connect(stubs)

    async def heartbeat_then_run() -> Any:
        """One heartbeat, then 0.2 s for a RunJob (a TimeoutError means not yet)."""
        await healthy.send(heartbeat=workers_pb2.Heartbeat(free_slots=1))
        return await healthy.receive_kind("run", seconds=0.2)

    retry = await wait_for_async(
        "the job to be reassigned", heartbeat_then_run, lambda _: True, timeout_s=6, poll_s=0
    )
    assert retry.ref.job_id == job.id and retry.ref.attempt == 2
    with psycopg.connect(db_url) as conn:
        state = conn.execute(
            "SELECT state FROM workers WHERE id = %s", (doomed.worker_id,)
        ).fetchone()
    assert state == ("LOST",)
    await healthy.send(started=workers_pb2.JobStarted(ref=retry.ref))
    await healthy.send(
        result=workers_pb2.JobResult(
            ref=retry.ref, outcome=workers_pb2.JOB_OUTCOME_SUCCEEDED, has_exit_code=True
        )
    )
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED)
    assert "JobRequeued" in events_of(db_url, job.id)
    await doomed.close()
    await healthy.close()


async def test_running_past_timeout_is_timed_out_and_cancelled(
    start_server: StartServer, stubs_for: Callable[[str], Stubs]
) -> None:
    app = await start_server(
        recovery={
            "reaper_interval": 0.1,
            "cancel_grace_seconds": 0.1,
            "heartbeat_interval": 0.2,
            "heartbeat_miss_limit": 50,
        },
    )
    stubs = stubs_for(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    job = await stubs.queue(["sleep", "60"], timeout_seconds=0.3)
    run = await worker.receive_kind("run")
    assert run.timeout_seconds == pytest.approx(0.3)
    await worker.send(started=workers_pb2.JobStarted(ref=run.ref))
    cancel = await worker.receive_kind("cancel", seconds=5)
    assert cancel.ref == run.ref and cancel.force
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_TIMED_OUT)
    await worker.close()


async def test_cancel_running_job_reaches_the_worker(
    start_server: StartServer, stubs_for: Callable[[str], Stubs]
) -> None:
    from hodei.api.v1 import jobs_pb2

    app = await start_server()
    stubs = stubs_for(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    job = await stubs.queue(["sleep", "60"])
    run = await worker.receive_kind("run")
    await worker.send(started=workers_pb2.JobStarted(ref=run.ref))
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_RUNNING)
    await stubs.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job.id, reason="stop"))
    cancel = await worker.receive_kind("cancel")
    assert cancel.ref == run.ref and cancel.reason == "stop"
    await worker.send(
        result=workers_pb2.JobResult(ref=run.ref, outcome=workers_pb2.JOB_OUTCOME_CANCELLED)
    )
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_CANCELLED)
    await worker.close()


async def test_worker_reconnects_to_a_restarted_server_and_keeps_its_attempt(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    first = await start_server(recovery={"heartbeat_interval": 60})
    stubs = stubs_for(first.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    kept = await stubs.queue(["sleep", "60"])
    run = await worker.receive_kind("run")
    await worker.send(started=workers_pb2.JobStarted(ref=run.ref))
    await stubs.wait_state(kept.id, common_pb2.JOB_STATE_RUNNING)
    await first.stop(grace=1)
    await worker.close()

    second = await start_server(recovery={"heartbeat_interval": 60})
    # The same database: the token that registered the worker is valid here too, and
    # only that token may speak for it.
    stubs2 = Stubs(second.address, token=server_token(first.address))
    stale = common_pb2.JobRef(job_id=kept.id, attempt=7)
    again, welcome = await FakeWorkerStream.connect(
        stubs2, worker_id=worker.worker_id, secret=worker.secret, running=[run.ref, stale]
    )
    assert list(welcome.superseded) == [stale]
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT state, server_id, running_jobs FROM workers WHERE id = %s",
            (worker.worker_id,),
        ).fetchone()
    assert row == ("BUSY", second.server_id, 1)
    await again.send(
        result=workers_pb2.JobResult(
            ref=run.ref, outcome=workers_pb2.JOB_OUTCOME_SUCCEEDED, has_exit_code=True
        )
    )
    await stubs2.wait_state(kept.id, common_pb2.JOB_STATE_SUCCEEDED)
    await again.close()


async def test_worker_that_lost_its_job_on_reconnect_gets_it_requeued(
    start_server: StartServer, stubs_for: Callable[[str], Stubs]
) -> None:
    app = await start_server(recovery={"heartbeat_interval": 60}, dispatcher={"enabled": True})
    stubs = stubs_for(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    job = await stubs.queue(["true"], max_attempts=2)
    await worker.receive_kind("run")
    await worker.close()
    await asyncio.sleep(0.2)
    # Same identity, but the process no longer holds the job (it restarted).
    again, _ = await FakeWorkerStream.connect(
        stubs, worker_id=worker.worker_id, secret=worker.secret, running=[]
    )
    rerun = await again.receive_kind("run")
    assert rerun.ref.job_id == job.id and rerun.ref.attempt == 2
    await again.close()


async def test_a_restarted_server_calls_no_worker_lost_before_a_full_miss_window(
    start_server: StartServer,
    spawn_worker: SpawnWorker,
    stubs_for: Callable[[str], Stubs],
    db_url: str,
) -> None:
    # Silence limit 0.9 s. The server is down for 1.5 s, so every last_heartbeat in the
    # table is stale when it comes back: only because nobody was there to store them.
    liveness = {"heartbeat_interval": 0.3, "heartbeat_miss_limit": 3, "reaper_interval": 0.1}
    app = await start_server(recovery=liveness)
    port = app.port
    worker = await spawn_worker(app.address, worker={"reconnect_max_backoff": 0.3})
    worker_id = await worker.worker_id()
    stubs = stubs_for(app.address)
    job = await stubs.queue(["/bin/sh", "-c", "sleep 3; echo once"])
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_RUNNING, seconds=15)
    await app.stop(grace=0.5)
    await asyncio.sleep(1.5)
    restarted = await start_server(recovery=liveness, server={"port": port})
    stubs2 = stubs_for(restarted.address)
    done = await stubs2.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=20)
    # The job ran once, on the worker that had it, which was never declared LOST.
    assert done.attempts == 1 and done.worker_id == worker_id
    events = events_of(db_url, worker_id)
    assert "WorkerLost" not in events, events


async def test_a_restarted_server_waits_out_the_workers_reconnect_backoff(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    # The chaos suite's double run: a live worker, still in its reconnect backoff, was
    # called LOST by a restarted server one miss window after its start, and its jobs
    # ran again. Miss window 0.9 s, backoff 2 s: the worker says Hello 1.8 s after the
    # restart, past the window but within window + backoff.
    liveness = {"heartbeat_interval": 0.3, "heartbeat_miss_limit": 3, "reaper_interval": 0.1}
    backoff = {"reconnect_max_backoff": 2.0}
    first = await start_server(recovery=liveness, worker=backoff)
    stubs = stubs_for(first.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    job = await stubs.queue(["sleep", "60"])
    run = await worker.receive_kind("run")
    await worker.send(started=workers_pb2.JobStarted(ref=run.ref))
    await stubs.wait_state(job.id, common_pb2.JOB_STATE_RUNNING)
    await first.stop(grace=0.5)
    await worker.close()

    second = await start_server(recovery=liveness, worker=backoff)
    await asyncio.sleep(1.8)
    stubs2 = Stubs(second.address, token=server_token(first.address))
    again, welcome = await FakeWorkerStream.connect(
        stubs2, worker_id=worker.worker_id, secret=worker.secret, running=[run.ref]
    )
    assert list(welcome.superseded) == []
    kept = await stubs2.wait_state(job.id, common_pb2.JOB_STATE_RUNNING)
    assert kept.attempts == 1
    assert "WorkerLost" not in events_of(db_url, worker.worker_id)
    await again.close()


async def test_a_silent_worker_that_said_draining_and_holds_nothing_stopped_cleanly(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    """Its Goodbye never came (its server went away meanwhile, its flush timed out), but
    it announced its stop and holds no job: TERMINATED, not LOST. A worker that said
    nothing is LOST as before."""
    app = await start_server(
        recovery={"heartbeat_interval": 0.3, "heartbeat_miss_limit": 2, "reaper_interval": 0.1},
    )
    stubs = stubs_for(app.address)
    stopping, _ = await FakeWorkerStream.connect(stubs)
    vanished, _ = await FakeWorkerStream.connect(stubs)
    await stopping.send(draining=workers_pb2.Draining())

    def states() -> dict[str, tuple[str, str]]:
        with psycopg.connect(db_url) as conn:
            rows = conn.execute(
                "SELECT w.id::text, w.state, e.payload->>'reason' FROM workers w"
                " LEFT JOIN LATERAL (SELECT payload FROM domain_events"
                "   WHERE aggregate_id = w.id ORDER BY id DESC LIMIT 1) e ON true"
            ).fetchall()
        return {r[0]: (r[1], r[2] or "") for r in rows}

    async def current() -> dict[str, tuple[str, str]]:
        return await asyncio.to_thread(states)

    await wait_for_async(
        "the draining worker to be DRAINING",
        current,
        lambda s: s[stopping.worker_id][0] == "DRAINING",
        timeout_s=5,
    )
    await stopping.close()
    await vanished.close()
    seen = await wait_for_async(
        "both silent workers to be judged",
        current,
        lambda s: (
            s[stopping.worker_id][0] in ("TERMINATED", "LOST")
            and s[vanished.worker_id][0] in ("TERMINATED", "LOST")
        ),
        timeout_s=20,
    )
    assert seen[stopping.worker_id][0] == "TERMINATED", seen
    assert seen[stopping.worker_id][1].startswith("stopped after draining, no Goodbye received")
    assert seen[vanished.worker_id][0] == "LOST", seen
    assert events_of(db_url, stopping.worker_id)[-2:] == ["WorkerDraining", "WorkerTerminated"]


async def test_a_worker_heard_on_its_stream_is_not_lost_while_its_heartbeats_go_unstored(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str
) -> None:
    """workers.last_heartbeat stops moving (a trigger throws every new value away, as an
    outage or a stalled pool does) while the worker keeps talking on its stream: this
    server heard it, so it stays READY, four miss windows long. Once the worker falls
    silent on the stream too, it is LOST within a window or so."""
    app = await start_server(
        recovery={"heartbeat_interval": 0.3, "heartbeat_miss_limit": 2, "reaper_interval": 0.1},
        worker={"reconnect_max_backoff": 0.1},
    )
    stubs = stubs_for(app.address)
    worker, _ = await FakeWorkerStream.connect(stubs)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION keep_heartbeat() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN NEW.last_heartbeat := OLD.last_heartbeat; RETURN NEW; END $$;"
            " CREATE TRIGGER keep_heartbeat BEFORE UPDATE ON workers"
            " FOR EACH ROW EXECUTE FUNCTION keep_heartbeat();"
            " UPDATE workers SET last_heartbeat = now() - interval '1 minute';"
        )

    def state() -> str:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "SELECT state FROM workers WHERE id = %s", (worker.worker_id,)
            ).fetchone()
        assert row is not None
        return str(row[0])

    silence = 0.6
    began = asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() - began < 4 * silence:
        await worker.send(heartbeat=workers_pb2.Heartbeat(free_slots=1))
        await asyncio.sleep(0.15)
    assert state() == "READY"
    # Silent on the stream as well: nothing vouches for it any more.
    await wait_for_async(
        "the silent worker to be LOST", lambda: asyncio.to_thread(state), lambda s: s == "LOST", 5
    )
    await worker.close()
