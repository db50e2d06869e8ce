"""The dispatcher's statements timed on their own at a given queue depth.

The "dispatch cycle" log line times a whole cycle on the server's event loop, which
also serves every worker stream: under load its wall time is mostly waiting for the
loop and the CPU. This runs the same statements (queries.sql `dispatch_jobs`, then
`dispatch_selected_jobs` as the dispatcher does when it claimed fewer than its batch)
from a connection of the bench's own, for K fake READY workers with S free slots each
inserted in the same transaction, which is rolled back: the queue is left as it was,
and the server's dispatcher never sees those workers (another server_id; SKIP LOCKED
keeps the two apart).

The server's connections keep their prepared statements, so after five executions
PostgreSQL may switch to a generic plan; psycopg forgets a statement prepared in a
rolled-back transaction, so here each run would be planned anew. Both plans are timed
instead: `plan_cache_mode` forced to custom for half the runs, to generic for the rest.
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
_MODES = ("custom", "generic")


async def probe_dispatch(url: str, workers: int, slots: int, repeats: int = 5) -> dict[str, Any]:
    """`repeats` runs with each plan; times in ms, client side (what the dispatcher
    waits for, on an otherwise idle platform)."""
    times: dict[str, list[float]] = {f"{s}_{m}": [] for s in ("main", "selected") for m in _MODES}
    claimed: list[float] = []
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        tx = PsycopgTx(conn)
        for mode in _MODES:
            await conn.execute(f"SET plan_cache_mode = force_{mode}_plan")
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
                    times[f"main_{mode}"].append((time.perf_counter() - began) * 1000)
                    began = time.perf_counter()
                    await tx.all("dispatch_selected_jobs", params)
                    times[f"selected_{mode}"].append((time.perf_counter() - began) * 1000)
                    claimed.append(float(len(rows)))
    out: dict[str, Any] = {"repeats": repeats, "jobs_claimed": median(claimed)}
    for key, values in times.items():
        out[f"{key}_ms_p50"] = median(values)
        out[f"{key}_ms_max"] = pct(values, 100)
    # The figure compared across depths: the worse of the two plans' medians (which one
    # the server's connections settle on is PostgreSQL's choice).
    out["dispatch_jobs_ms_p50"] = max(out["main_custom_ms_p50"], out["main_generic_ms_p50"])
    return out


def probe_text(probe: dict[str, Any]) -> str:
    return (
        f"statements alone ({probe['repeats']} rolled-back runs per plan, "
        f"{probe['jobs_claimed']:.0f} jobs claimed): dispatch_jobs p50 custom plan "
        f"{probe['main_custom_ms_p50']:.2f} ms, generic {probe['main_generic_ms_p50']:.2f} ms; "
        f"dispatch_selected_jobs {probe['selected_custom_ms_p50']:.2f} / "
        f"{probe['selected_generic_ms_p50']:.2f} ms"
    )
