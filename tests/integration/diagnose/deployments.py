"""What the diagnose tests do to a deployment through its front doors: start one with a
worker, wait for its workers to be READY and its jobs to reach a state (read from the
database), queue a job (through the public API); and what every test asks of a
diagnosis run (its targets, no "internal error", its hints)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import psycopg

from harness.waits import wait_for_async
from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc
from hodei.client.channel import token_interceptors


async def wait_ready_workers(db_url: str, n: int, within_s: float = 15.0) -> None:
    """Wait until `n` workers are READY with an open stream (asserting, with the last value)."""

    def count_ready() -> int:
        with psycopg.connect(db_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM workers WHERE state = 'READY' AND server_id IS NOT NULL"
            ).fetchone()
        return int(row[0]) if row else 0

    async def ready_count() -> int:
        # In a thread: the server under test serves on this loop meanwhile.
        return await asyncio.to_thread(count_ready)

    await wait_for_async(
        f"{n} READY worker(s)", ready_count, lambda seen: seen >= n, within_s, poll_s=0.1
    )


async def queue_job(address: str, command: list[str], token: str = "") -> str:
    """Queue a test-tagged job through the public API (grpc.aio: the server shares our loop)."""
    async with grpc.aio.insecure_channel(
        address, interceptors=token_interceptors(token)
    ) as channel:
        stub = jobs_pb2_grpc.JobExecutionServiceStub(channel)
        reply = await stub.QueueJob(
            jobs_pb2.QueueJobRequest(
                spec=jobs_pb2.JobSpec(command=command, labels={"hodei.io/test": "true"})
            ),
            timeout=5,
        )
        return str(reply.job.id)


async def queue_burst(address: str, command: list[str], n: int, token: str = "") -> list[str]:
    """Queue `n` test-tagged jobs at once (concurrent QueueJob calls on one channel)."""
    async with grpc.aio.insecure_channel(
        address, interceptors=token_interceptors(token)
    ) as channel:
        stub = jobs_pb2_grpc.JobExecutionServiceStub(channel)
        spec = jobs_pb2.JobSpec(command=command, labels={"hodei.io/test": "true"})
        replies = await asyncio.gather(
            *(stub.QueueJob(jobs_pb2.QueueJobRequest(spec=spec), timeout=30) for _ in range(n))
        )
        return [str(r.job.id) for r in replies]


def targets(db_url: str, address: str) -> list[str]:
    """The command-line targets of a diagnosis of this deployment."""
    return ["--database-url", db_url, "--server", address]


def no_crash(run: Any) -> None:
    assert "internal error" not in run.stderr + run.stdout, (run.stderr, run.stdout)


def hints(run: Any) -> list[str]:
    """Every "Try fixing it" line of the run's report."""
    return [r for c in run.report["checks"] for r in c.get("remediation", [])]


async def deployment(
    db_url: str, start_server: Any, spawn_worker: Callable[..., Any], **settings: Any
) -> Any:
    """A server (with `settings`) and one READY worker; returns the server."""
    app = await start_server(**settings)
    spawn_worker(app.address)
    await wait_ready_workers(db_url, 1)
    return app


async def job_state(db_url: str, job_id: str) -> str:
    """The job's state now ("" when there is no such job), read in a thread: the server
    under test serves on this loop meanwhile."""

    def read() -> str:
        with psycopg.connect(db_url, autocommit=True) as conn:
            row = conn.execute("SELECT state FROM jobs WHERE id = %s", (job_id,)).fetchone()
        return str(row[0]) if row else ""

    return await asyncio.to_thread(read)


async def wait_job(
    db_url: str, job_id: str, states: tuple[str, ...], within_s: float = 15.0
) -> str:
    """Wait until the job is in one of `states`; returns that state."""

    async def state() -> str:
        return await job_state(db_url, job_id)

    return str(
        await wait_for_async(
            f"job {job_id} in {states}", state, lambda s: s in states, within_s, poll_s=0.05
        )
    )
