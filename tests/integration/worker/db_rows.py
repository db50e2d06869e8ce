"""What the worker tests read back from the database: a job's log lines, a worker's row
and its domain events."""

from __future__ import annotations

import psycopg


async def job_logs(db_url: str, job_id: str) -> list[tuple[int, bool, str]]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT attempt, is_stderr, line FROM job_logs WHERE job_id = %s ORDER BY sequence",
            (job_id,),
        )
        return [(int(a), bool(e), str(line)) for a, e, line in await cur.fetchall()]


async def worker_row(db_url: str, worker_id: str) -> tuple[str, int]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT state, running_jobs FROM workers WHERE id = %s", (worker_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row[0]), int(row[1])


async def worker_events(db_url: str, worker_id: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT event_type FROM domain_events WHERE aggregate_id = %s ORDER BY id",
            (worker_id,),
        )
        return [str(t) for (t,) in await cur.fetchall()]
