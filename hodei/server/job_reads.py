"""What a client reads about jobs: one job, a filtered list, the queue view.
Nothing here changes state (the cancel is in hodei.server.transitions, the queueing
in hodei.server.submission)."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterable
from datetime import datetime

from psycopg.types.json import Jsonb

from hodei.db.connector import Database
from hodei.domain.jobs import JobState
from hodei.errors import InvalidArgument, NotFound
from hodei.server.models import JobRecord, QueueView

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 1000
#: Bytes of jobs in one ListJobs response: well under grpc's 4 MiB default receive
#: limit minus the envelope, and many times the largest job (a 256 KiB spec).
LIST_PAGE_BYTES = 3 * 1024 * 1024 + 512 * 1024
_TOKEN_MAX = 200


def page_token(job: JobRecord) -> str:
    """Where the next page starts: after this job in (created_at DESC, id) order.
    Opaque to clients; base64 so that nobody builds one by hand."""
    raw = f"v1|{job.created_at.isoformat()}|{job.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def parse_page_token(token: str) -> tuple[datetime, uuid.UUID] | None:
    """The position a page token names, None for an empty token, or InvalidArgument."""
    if not token:
        return None
    try:
        if len(token) > _TOKEN_MAX:
            raise ValueError
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        version, created, job_id = raw.split("|")
        if version != "v1":
            raise ValueError
        at = datetime.fromisoformat(created)
        if at.tzinfo is None:
            raise ValueError
        return at, uuid.UUID(job_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidArgument(
            "page_token is not one this server issued; send the next_page_token of a "
            "ListJobs response, or none for the first page"
        ) from None


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
        page_token: str = "",
        owner: uuid.UUID | None = None,
    ) -> tuple[list[JobRecord], bool]:
        """Up to `limit` jobs, newest first, after the position `page_token` names,
        and whether more jobs follow them. `owner`: only the jobs that token submitted;
        None: every job."""
        limit = DEFAULT_LIST_LIMIT if limit <= 0 else min(limit, MAX_LIST_LIMIT)
        after = parse_page_token(page_token)
        async with self.db.connection() as tx:
            rows = await tx.all(
                "list_jobs",
                {
                    "states": [str(s) for s in states],
                    "labels": Jsonb(labels or {}),
                    "after_created": after[0] if after else None,
                    "after_id": after[1] if after else None,
                    # One more than asked: whether another page exists.
                    "limit": limit + 1,
                    "owner": owner,
                },
            )
        jobs = [JobRecord.from_row(r) for r in rows]
        return jobs[:limit], len(jobs) > limit

    async def queue_view(self, limit: int = 20, owner: uuid.UUID | None = None) -> QueueView:
        """The queue's depth, age and state counts, and its first `limit` jobs (only
        `owner`'s when given: another owner's job ids are not shown)."""
        async with self.db.connection() as tx:
            summary = await tx.one("queue_summary")
            jobs = await tx.all("queue_jobs", {"limit": limit or 20, "owner": owner})
            counts = await tx.all("job_state_counts")
        assert summary is not None
        return QueueView(
            depth=int(summary["depth"]),
            oldest_age_seconds=float(summary["oldest_age_seconds"]),
            jobs=jobs,
            job_counts={r["state"]: int(r["count"]) for r in counts},
        )
