"""The statements of a job's hot path are planned once per connection: PostgreSQL
caches a generic plan for each prepared statement unless the generic plan looks much
dearer than a custom one, and then it plans every execution anew (about a third of
the start statement's cost before it was written to avoid that)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from hodei.db.connector import Database, query
from hodei.domain.jobs import JobState
from hodei.server.models import AttemptRef
from hodei.server.results import AttemptResult
from hodei.server.services import Services
from hodei.settings import Settings

#: PostgreSQL tries five custom plans before it considers the generic one.
ROUNDS = 8


pytestmark = pytest.mark.integration


@pytest.fixture
async def services(db_url: str) -> AsyncIterator[Services]:
    # One connection, so that every execution lands in the same session's cache.
    db = Database(db_url, 1, 1)
    await db.open()
    try:
        yield Services.build(Settings(database={"url": db_url}), "plans", datetime.now(UTC), db)
    finally:
        await db.close()


async def test_hot_path_statements_use_cached_generic_plans(services: Services) -> None:
    s = services
    # A table with history, as in production: the cost estimates that decide between
    # the plans depend on it (on an empty table every plan looks alike).
    async with s.db.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO jobs (id, command, state) SELECT gen_random_uuid(), '{true}', "
            "'SUCCEEDED' FROM generate_series(1, 5000)"
        )
        await conn.execute("ANALYZE jobs")
    worker = await s.workers.register("w", "host", 1, 2, "t", {})
    await s.workers.connect(worker.id, [], 2)
    for _ in range(ROUNDS):
        await s.submission.submit_many([{"command": ["true"]} for _ in range(2)])
        assigned = await s.assigner.claim_and_assign([worker.id])
        assert len(assigned) == 2
        refs = [AttemptRef(job.id, job.attempts) for job in assigned]
        assert all(
            not isinstance(o, Exception) for o in await s.results.start_many(worker.id, refs)
        )
        finished = await s.results.finish_many(
            worker.id, [AttemptResult(ref, JobState.SUCCEEDED, 0, "") for ref in refs]
        )
        assert [getattr(job, "state", None) for job in finished] == [JobState.SUCCEEDED] * 2
    async with s.db.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
        )
        prepared = await cur.fetchall()
    for name in ("dispatch_jobs", "start_jobs_fenced", "finish_jobs_fenced"):
        # psycopg sends the text with $n for each %(param)s: compare what precedes them.
        head = query(name).split("%(")[0]
        (row,) = [r for r in prepared if r["statement"].startswith(head)]
        generic, custom = row["generic_plans"], row["custom_plans"]
        assert generic >= ROUNDS - 5, f"{name}: {generic} generic, {custom} custom plans"
