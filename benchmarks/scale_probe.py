"""The dispatcher's statements timed on their own at a given queue depth.

The "dispatch cycle" log line times a whole cycle on the server's event loop, which
also serves every worker stream: under load its wall time is mostly waiting for the
loop and the CPU. This runs the same statements (queries.sql `dispatch_jobs`, then
`dispatch_selected_jobs` as the dispatcher does when it claimed fewer than its batch)
from a connection of the bench's own, for K fake READY workers with S free slots each
inserted in the same transaction, which is rolled back: the queue is left as it was,
and the server's dispatcher never sees those workers (another server_id; SKIP LOCKED
keeps the two apart). Prepared like the server's, so PostgreSQL may switch to its
generic plan after five executions, as it does on the server.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row
from scale_common import median, pct

from hodei.db.connector import PsycopgTx
from hodei.domain.events import EventType

_SERVER_ID = "bench-probe"


async def probe_dispatch(url: str, workers: int, slots: int, repeats: int = 9) -> dict[str, Any]:
    main: list[float] = []
    selected: list[float] = []
    claimed: list[int] = []
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        tx = PsycopgTx(conn)
        for _ in range(repeats):
            async with conn.transaction(force_rollback=True):
                ids = [uuid.uuid4() for _ in range(workers)]
                await conn.execute(
                    "INSERT INTO workers (id, slots, state, server_id) "
                    "SELECT unnest(%s::uuid[]), %s, 'READY', %s",
                    (ids, slots, _SERVER_ID),
                )
                params = {
                    "server_id": _SERVER_ID,
                    "ids": ids,
                    "limit": 64,  # settings.dispatcher.batch_size's default
                    "ack_timeout": 10.0,
                    "dispatch_actor": f"dispatcher:{_SERVER_ID}",
                    "assigned_event": str(EventType.JOB_ASSIGNED),
                    "busy_event": str(EventType.WORKER_BUSY),
                }
                began = time.perf_counter()
                rows = await tx.all("dispatch_jobs", params)
                main.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                await tx.all("dispatch_selected_jobs", params)
                selected.append((time.perf_counter() - began) * 1000)
                claimed.append(len(rows))
    return {
        "repeats": repeats,
        "jobs_claimed": median([float(n) for n in claimed]),
        "dispatch_jobs_ms_p50": median(main),
        "dispatch_jobs_ms_p95": pct(main, 95),
        "selected_jobs_ms_p50": median(selected),
        "selected_jobs_ms_p95": pct(selected, 95),
    }


def probe_text(probe: dict[str, Any]) -> str:
    return (
        f"statements alone ({probe['repeats']} rolled-back runs, {probe['jobs_claimed']:.0f} "
        f"jobs claimed): dispatch_jobs p50 {probe['dispatch_jobs_ms_p50']:.2f} ms, p95 "
        f"{probe['dispatch_jobs_ms_p95']:.2f} ms; dispatch_selected_jobs p50 "
        f"{probe['selected_jobs_ms_p50']:.2f} ms"
    )
