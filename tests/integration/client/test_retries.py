"""HodeiClient retries a submission the server did not answer, with the same
idempotency key (hodei.client.retries): across a server killed with SIGKILL and
restarted on the same port, and past a call deadline. Exactly one job each time."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.launchers.base import ANY_METRICS_PORT, free_port
from harness.waits import wait_until_async
from hodei.client import HodeiClient, RetryPolicy
from tests.integration.tokens import make_token, server_token

pytestmark = pytest.mark.integration

_REPO = Path(__file__).resolve().parents[3]
StartServer = Callable[..., Any]


def _count(db_url: str, sql: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


class ServerProcesses:
    """`python -m hodei.server` on one port, started and SIGKILLed at will."""

    def __init__(self, db_url: str, tmp_path: Path, token: str) -> None:
        self.db_url = db_url
        #: A client token: the servers run with authentication on (the default).
        self.token = token
        self.tmp_path = tmp_path
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
        env["PYTHONPATH"] = str(_REPO)
        env.update(ANY_METRICS_PORT)
        log = self.tmp_path / f"server-{len(self.procs) + 1}.log"
        argv = [sys.executable, "-m", "hodei.server", "--port", str(self.port)]
        argv += ["--database-url", self.db_url, "--log-file", str(log)]
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def start(self) -> subprocess.Popen[bytes]:
        proc = self._spawn()
        self.procs.append(proc)
        async with HodeiClient(self.address, token=self.token) as client:
            await client.wait_ready(30)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
async def servers(db_url: str, tmp_path: Path) -> AsyncIterator[ServerProcesses]:
    made = ServerProcesses(db_url, tmp_path, await make_token(db_url, "retries", "client"))
    yield made
    made.stop_all()


async def test_a_submission_outlives_a_server_restart_and_queues_once(
    servers: ServerProcesses, db_url: str
) -> None:
    first = await servers.start()
    async with HodeiClient(servers.address, token=servers.token) as client:
        await client.list_jobs()  # the channel is connected when the server dies
        servers.kill(first)
        call = asyncio.create_task(client.queue_job(["true"], name="across-restart"))
        await asyncio.sleep(1.5)  # the server stays down a while: the call keeps retrying
        assert not call.done(), call
        await servers.start()
        job = await asyncio.wait_for(call, 30)
    assert job.name == "across-restart"
    assert _count(db_url, "SELECT count(*) FROM jobs") == 1
    assert _count(db_url, "SELECT count(*) FROM domain_events WHERE event_type = 'JobCreated'") == 1


async def test_an_answer_lost_with_its_server_is_replayed_not_queued_again(
    servers: ServerProcesses, db_url: str
) -> None:
    """The duplicate the key exists for: the server dies after the job is written but
    before it answers. The retry to the restarted server gets that job back."""
    first = await servers.start()
    with psycopg.connect(db_url) as blocker:
        # An uncommitted row with the call's key: the QueueJob statement, once sent
        # whole, waits inside PostgreSQL for this transaction to end...
        blocker.execute(
            "INSERT INTO submission_keys VALUES ('lost-answer', '', ARRAY[gen_random_uuid()])"
        )
        async with HodeiClient(servers.address, token=servers.token) as client:
            call = asyncio.create_task(
                client.queue_job(["true"], name="lost", idempotency_key="lost-answer")
            )

            def waiting_statements() -> int:
                return _count(
                    db_url,
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() "
                    "AND query LIKE '-- queue_job with an idempotency key%'",
                )

            await wait_until_async(
                "the QueueJob statement to wait for the lock", lambda: waiting_statements() == 1, 15
            )
            # ...its server dies with the call open...
            servers.kill(first)
            blocker.rollback()  # ...and only then the statement goes on, and commits.
            await wait_until_async(
                "the dead server's statement to commit its job",
                lambda: _count(db_url, "SELECT count(*) FROM jobs") == 1,
                15,
            )
            assert not call.done(), call
            await servers.start()
            job = await asyncio.wait_for(call, 30)
    with psycopg.connect(db_url) as conn:
        ids = [str(r[0]) for r in conn.execute("SELECT id FROM jobs").fetchall()]
    assert ids == [job.id]
    assert _count(db_url, "SELECT count(*) FROM domain_events WHERE event_type = 'JobCreated'") == 1


async def test_a_call_past_its_deadline_is_retried_with_its_key(
    start_server: StartServer, db_url: str
) -> None:
    app = await start_server()
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE submission_keys IN SHARE MODE")
        policy = RetryPolicy(total_seconds=20, initial_backoff=0.05, max_backoff=0.2)
        async with HodeiClient(
            app.address, deadline=0.5, submit_retry=policy, token=server_token(app.address)
        ) as client:
            call = asyncio.create_task(client.queue_job(["true"]))
            await asyncio.sleep(1.5)  # a few tries run out their 0.5 s deadline meanwhile
            assert not call.done(), call
            blocker.commit()
            job = await asyncio.wait_for(call, 20)
    with psycopg.connect(db_url) as conn:
        ids = [str(r[0]) for r in conn.execute("SELECT id FROM jobs").fetchall()]
    assert ids == [job.id]
