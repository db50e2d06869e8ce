"""A burst of chaos jobs submitted the way a user's program would (concurrent
QueueJob calls that retry on UNAVAILABLE), and the accounting once it has settled."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from harness.chaos.ledger import Ledger, ledger_command
from harness.waits import wait_for_async
from hodei.client import HodeiClient, RetryPolicy
from hodei.errors import Unavailable

logger = logging.getLogger(__name__)

FINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT")
TRIAL_LABEL = "chaos.trial"
SUBMISSION_LABEL = "chaos.submission"


@dataclass
class Burst:
    """One trial's jobs: `count` submissions of a ledger job, spread over `addresses`
    (one server, or two replicas) by `concurrency` submitters."""

    addresses: Sequence[str]
    ledger_path: Path
    count: int
    job_seconds: float = 0.05
    concurrency: int = 16
    #: How long one submission keeps retrying (a user's program would give up some
    #: time; long enough to ride out a 10 s database outage).
    give_up_s: float = 90.0
    trial_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    tokens: list[str] = field(default_factory=list)
    #: The API token the submitters call the server with (the run's admin token).
    api_token: str = ""
    #: Submissions the client gave up on (counted as lost).
    refused: list[str] = field(default_factory=list)
    submitted: int = 0

    async def run(self) -> None:
        """Submit every job; returns when each submission was answered or given up."""
        self.tokens = [uuid.uuid4().hex for _ in range(self.count)]
        queue: asyncio.Queue[str] = asyncio.Queue()
        for token in self.tokens:
            queue.put_nowait(token)
        policy = RetryPolicy(total_seconds=self.give_up_s, initial_backoff=0.05, max_backoff=1.0)
        clients = [
            HodeiClient(address, deadline=10.0, submit_retry=policy, token=self.api_token)
            for address in self.addresses
        ]
        try:
            await asyncio.gather(
                *(
                    self._submitter(clients[index % len(clients)], queue)
                    for index in range(self.concurrency)
                )
            )
        finally:
            for client in clients:
                await client.close()

    async def _submitter(self, client: HodeiClient, queue: asyncio.Queue[str]) -> None:
        command = ledger_command(self.ledger_path, self.job_seconds)
        labels = {TRIAL_LABEL: self.trial_id}
        while not queue.empty():
            token = queue.get_nowait()
            try:
                # The client retries UNAVAILABLE itself, with this key every time: a try
                # whose answer was lost (the server died after its commit) is not a
                # second job.
                await client.queue_job(
                    command,
                    labels={**labels, SUBMISSION_LABEL: token},
                    max_attempts=5,
                    idempotency_key=token,
                )
                self.submitted += 1
            except Unavailable:
                self.refused.append(token)


@dataclass
class Settled:
    """What the burst left behind, read from the tables and the ledger."""

    jobs: int
    lost: int
    duplicates: int
    ran_twice: list[str]
    #: finished_at (epoch seconds) of every SUCCEEDED job of the trial.
    finished: list[float]
    not_succeeded: list[str]


async def settle(burst: Burst, database_url: str, within_s: float) -> None:
    """Wait until every job of the trial is in a final state."""

    async def unfinished() -> int:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            row = await (
                await conn.execute(
                    "SELECT count(*) FROM jobs WHERE labels->>%s = %s AND state <> ALL(%s)",
                    (TRIAL_LABEL, burst.trial_id, list(FINAL)),
                )
            ).fetchone()
        return int(row[0]) if row else 0

    await wait_for_async(
        f"every job of trial {burst.trial_id} to reach a final state",
        unfinished,
        lambda count: count == 0,
        within_s,
        poll_s=0.25,
        describe=lambda count: f"{count} not final",
    )


async def account(burst: Burst, database_url: str, killed_workers: set[int]) -> Settled:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        rows = await (
            await conn.execute(
                "SELECT id::text, labels->>%s, state, extract(epoch FROM finished_at)"
                " FROM jobs WHERE labels->>%s = %s",
                (SUBMISSION_LABEL, TRIAL_LABEL, burst.trial_id),
            )
        ).fetchall()
    ledger = Ledger.read(burst.ledger_path)
    by_token: dict[str, list[tuple[str, str]]] = {}
    finished: list[float] = []
    for job_id, token, state, finished_at in rows:
        by_token.setdefault(token, []).append((job_id, state))
        if state == "SUCCEEDED" and finished_at is not None:
            finished.append(float(finished_at))
    lost = 0
    not_succeeded: list[str] = []
    for token in burst.tokens:
        jobs = by_token.get(token, [])
        ok = [job_id for job_id, state in jobs if state == "SUCCEEDED" and ledger.ended(job_id)]
        if not ok:
            lost += 1
            not_succeeded.extend(f"{job_id}={state}" for job_id, state in jobs)
    duplicates = sum(len(jobs) - 1 for jobs in by_token.values() if len(jobs) > 1)
    return Settled(
        jobs=len(burst.tokens),
        lost=lost,
        duplicates=duplicates,
        ran_twice=ledger.ran_twice(killed_workers),
        finished=sorted(finished),
        not_succeeded=not_succeeded[:10],
    )
