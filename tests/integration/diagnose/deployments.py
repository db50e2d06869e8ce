"""What the diagnose tests do to a deployment through its front doors: wait for its
workers to be READY (read from the database) and queue a job (through the public API)."""

from __future__ import annotations

import asyncio

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
