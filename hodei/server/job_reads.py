"""What a client reads about jobs: one job, a filtered list, the queue view.
Nothing here changes state (the cancel is in hodei.server.transitions, the queueing
in hodei.server.submission)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from psycopg.types.json import Jsonb

from hodei.db.connector import Database
from hodei.domain.jobs import JobState
from hodei.errors import NotFound
from hodei.server.models import JobRecord, QueueView

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 1000


class JobReads:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_job(self, job_id: uuid.UUID) -> JobRecord:
        async with self.db.connection() as tx:
            row = await tx.one("get_job", {"id": job_id})
        if row is None:
            raise NotFound(f"job {job_id} not found")
        return JobRecord.from_row(row)

    async def job_owner(self, job_id: uuid.UUID) -> uuid.UUID | None:
        """The token that submitted the job (None: submitted without authentication)."""
        async with self.db.connection() as tx:
            row = await tx.one("job_owner", {"id": job_id})
        if row is None:
            raise NotFound(f"job {job_id} not found")
        owner: uuid.UUID | None = row["owner_token_id"]
        return owner

    async def list_jobs(
        self,
        states: Iterable[JobState] = (),
        limit: int = 0,
        labels: dict[str, str] | None = None,
        owner: uuid.UUID | None = None,
    ) -> list[JobRecord]:
        """`owner`: only the jobs that token submitted; None: every job."""
        limit = DEFAULT_LIST_LIMIT if limit <= 0 else min(limit, MAX_LIST_LIMIT)
        async with self.db.connection() as tx:
            rows = await tx.all(
                "list_jobs",
                {
                    "states": [str(s) for s in states],
                    "labels": Jsonb(labels or {}),
                    "limit": limit,
                    "owner": owner,
                },
            )
        return [JobRecord.from_row(r) for r in rows]

    async def queue_view(self, limit: int = 20) -> QueueView:
        async with self.db.connection() as tx:
            summary = await tx.one("queue_summary")
            jobs = await tx.all("queue_jobs", {"limit": limit or 20})
            counts = await tx.all("job_state_counts")
        assert summary is not None
        return QueueView(
            depth=int(summary["depth"]),
            oldest_age_seconds=float(summary["oldest_age_seconds"]),
            jobs=jobs,
            job_counts={r["state"]: int(r["count"]) for r in counts},
        )
