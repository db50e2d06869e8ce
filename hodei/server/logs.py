"""Job output: batched ingestion fenced by attempt, reading, and live fan-out.

Ingestion never waits for subscribers: each subscriber has a bounded buffer and
a wake-up event; when its buffer overflows (a slow reader) it falls back to
reading the table, so a slow subscriber costs only itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

from hodei.db.connector import Database
from hodei.db.copy_format import iter_log_rows
from hodei.domain.jobs import (
    MAX_STORED_LINE_BYTES,
    JobState,
    sanitize_output_line,
    split_output_line,
)
from hodei.errors import NotFound
from hodei.metrics import server_metrics
from hodei.server.models import AttemptRef, LogChunk, LogLineRecord
from hodei.server.transitions import fence, lock_job

logger = logging.getLogger(__name__)

DEFAULT_GET_LIMIT = 1000
MAX_GET_LIMIT = 10_000
_PAGE = 5000
#: Bytes of lines in one GetLogs response or one streamed message: well under the
#: clients' 64 MiB receive limit (and grpc's 4 MiB default), and at least one whole
#: stored line (MAX_STORED_LINE_BYTES), so a 100 MB line reads back in pages.
PAGE_BYTES = 4 * 1024 * 1024
#: Bytes a LogLine costs besides its text (sequence, attempt, flags, timestamp, tags).
LINE_OVERHEAD = 32
#: Lines a subscriber may have waiting in memory before it reads from the table instead.
#: It must exceed the largest batch ingestion publishes at once (the stream reader
#: merges up to 50,000 lines, hodei.server.api.workers_api): at 10,000 every merged
#: batch overflowed and the subscriber re-read the table while ingestion ran.
SUBSCRIBER_BUFFER = 60_000
#: How often an idle subscriber re-checks the table (lines written by another server).
SUBSCRIBER_POLL = 1.0


class Subscriber:
    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id = job_id
        self.buffer: deque[LogLineRecord] = deque()
        self.overflow = False
        self.wake = asyncio.Event()

    def push(self, lines: list[LogLineRecord]) -> None:
        if self.overflow or len(self.buffer) + len(lines) > SUBSCRIBER_BUFFER:
            self.overflow = True
            self.buffer.clear()
        else:
            self.buffer.extend(lines)
        self.wake.set()

    def take(self, after: int) -> list[LogLineRecord] | None:
        """Buffered lines following `after` without a gap, or None (read the table)."""
        if self.overflow:
            self.overflow = False
            self.buffer.clear()
            return None
        lines = [line for line in self.buffer if line.sequence > after]
        self.buffer.clear()
        if lines and lines[0].sequence != after + 1:
            return None
        return lines


class LogBus:
    """In-process fan-out of freshly persisted lines to SubscribeLogs streams."""

    def __init__(self) -> None:
        self._subs: dict[uuid.UUID, set[Subscriber]] = {}

    def subscribe(self, job_id: uuid.UUID) -> Subscriber:
        sub = Subscriber(job_id)
        self._subs.setdefault(job_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.job_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.job_id]

    def has_subscribers(self, job_id: uuid.UUID) -> bool:
        return job_id in self._subs

    def publish(self, job_id: uuid.UUID, lines: list[LogLineRecord]) -> None:
        for sub in self._subs.get(job_id, ()):
            sub.push(lines)

    def job_changed(self, job_id: uuid.UUID) -> None:
        """Wake the job's subscribers (e.g. it reached a final state)."""
        for sub in self._subs.get(job_id, ()):
            sub.wake.set()


class LogService:
    def __init__(self, db: Database, bus: LogBus) -> None:
        self.db = db
        self.bus = bus

    async def ingest(
        self, worker_id: uuid.UUID, ref: AttemptRef, first_line: int, chunk: LogChunk
    ) -> int:
        """Persist a batch of the attempt's lines; return the attempt's next expected line.

        `first_line` is the worker's 0-based index of the batch within the attempt: the
        part already persisted (a batch resent after a reconnect) is skipped; a batch
        starting past the expected line is not stored, and the answer tells the worker
        where to resume.
        """
        async with self.db.transaction() as tx:
            job = await lock_job(tx, ref.job_id)
            fence(job, worker_id, ref.attempt)
            expected = job.attempt_lines
            if first_line > expected or first_line + len(chunk) <= expected:
                return expected
            fresh = chunk.tail(expected - first_line)
            received = len(fresh)
            fresh = split_long_lines(fresh)
            lines = fresh.lines
            text = "".join(lines)
            if "\x00" in text:
                lines = [sanitize_output_line(line) for line in lines]
                text = "".join(lines)
            base = job.log_seq
            micros = fresh.micros
            await tx.copy_data(
                "copy_logs",
                iter_log_rows(job.id, base + 1, ref.attempt, fresh.stderr, lines, micros),
            )
            # Rows and the worker's lines differ when a line was split: the sequence
            # counts rows, the attempt's cursor counts the lines the worker numbered.
            cursor = await tx.one(
                "advance_log_cursor", {"id": job.id, "rows": len(lines), "lines": received}
            )
            assert cursor is not None
            next_line = int(cursor["attempt_lines"])
        server_metrics().logs_ingested(len(lines), len(text.encode(errors="replace")))
        if self.bus.has_subscribers(job.id):
            self.bus.publish(
                job.id,
                [
                    LogLineRecord(job.id, base + i, ref.attempt, err, line, us)
                    for i, (err, line, us) in enumerate(
                        zip(fresh.stderr, lines, micros, strict=True), start=1
                    )
                ],
            )
        return next_line

    async def read(
        self, job_id: uuid.UUID, after: int = 0, limit: int = 0
    ) -> tuple[list[LogLineRecord], bool]:
        """A page of persisted lines, and whether it reaches the end of a finished job."""
        limit = DEFAULT_GET_LIMIT if limit <= 0 else min(limit, MAX_GET_LIMIT)
        async with self.db.connection() as tx:
            state = await tx.one("job_log_state", {"id": job_id})
            if state is None:
                raise NotFound(f"job {job_id} not found")
            rows = await tx.all("get_logs", self._page_args(job_id, after, limit))
        lines = [_line(r) for r in rows]
        last = lines[-1].sequence if lines else after
        complete = JobState(state["state"]).is_final and last >= state["log_seq"]
        return lines, complete

    async def follow(
        self,
        job_id: uuid.UUID,
        include_history: bool = True,
        tail_lines: int = 0,
        after_sequence: int = 0,
    ) -> AsyncIterator[list[LogLineRecord]]:
        """History (if asked) then live lines, in sequence order, no gap, no duplicate.

        Subscribes before reading anything, so nothing persisted meanwhile is missed;
        ends once the job is final and its last line was yielded. Yields lists (one
        page or one live batch at a time).
        """
        sub = self.bus.subscribe(job_id)
        try:
            state = await self._log_state(job_id)
            last = after_sequence
            if not include_history:
                last = max(last, int(state["log_seq"]))
            elif tail_lines:
                last = max(last, int(state["log_seq"]) - tail_lines)
            while True:
                lines = sub.take(last)
                if lines is None or (not lines and last < state["log_seq"]):
                    # A gap in what the bus holds, or lines persisted before we
                    # subscribed (or by another server): read them from the table.
                    async with self.db.connection() as tx:
                        rows = await tx.all("get_logs", self._page_args(job_id, last, _PAGE))
                    lines = [_line(r) for r in rows]
                if lines:
                    last = lines[-1].sequence
                    # At most a page per message, however large the live batch.
                    for page in page_by_bytes(lines, _PAGE, PAGE_BYTES):
                        yield page
                    continue
                if last >= state["log_seq"]:
                    if JobState(state["state"]).is_final:
                        return
                    # Caught up: wait for the bus (new lines, the job's end) or the poll.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(sub.wake.wait(), SUBSCRIBER_POLL)
                # Cleared before the read: a wake-up set after it is seen by the next wait.
                sub.wake.clear()
                state = await self._log_state(job_id)
        finally:
            self.bus.unsubscribe(sub)

    @staticmethod
    def _page_args(job_id: uuid.UUID, after: int, limit: int) -> dict[str, Any]:
        return {
            "id": job_id,
            "after": after,
            "limit": limit,
            "max_bytes": PAGE_BYTES,
            "overhead": LINE_OVERHEAD,
        }

    async def _log_state(self, job_id: uuid.UUID) -> dict[str, Any]:
        async with self.db.connection() as tx:
            state = await tx.one("job_log_state", {"id": job_id})
        if state is None:
            raise NotFound(f"job {job_id} not found")
        return state


def split_long_lines(chunk: LogChunk, max_bytes: int = MAX_STORED_LINE_BYTES) -> LogChunk:
    """`chunk` with every line over `max_bytes` split into consecutive pieces (same
    stream and time): any client's LogBatch is stored as rows GetLogs can page."""
    # max() runs in C; the per-line work below is only for a batch with a long line.
    if not chunk.lines or max(map(len, chunk.lines)) * 4 <= max_bytes:
        return chunk
    out = LogChunk()
    for err, line, us in zip(chunk.stderr, chunk.lines, chunk.micros, strict=True):
        pieces = split_output_line(line, max_bytes)
        out.stderr += [err] * len(pieces)
        out.lines += pieces
        out.micros += [us] * len(pieces)
    return out


def page_by_bytes(
    lines: list[LogLineRecord], max_lines: int, max_bytes: int
) -> Iterator[list[LogLineRecord]]:
    """`lines` as consecutive pages of at most `max_lines` lines and `max_bytes` bytes
    (a page holds at least one line)."""
    page: list[LogLineRecord] = []
    size = 0
    for line in lines:
        cost = line_cost(line.line)
        if page and (len(page) >= max_lines or size + cost > max_bytes):
            yield page
            page, size = [], 0
        page.append(line)
        size += cost
    if page:
        yield page


def line_cost(line: str) -> int:
    """What a line weighs in a response: its bytes and the LogLine fields around them.
    The same sum as the `get_logs` query's (octet_length + LINE_OVERHEAD)."""
    return len(line) + LINE_OVERHEAD if line.isascii() else len(line.encode()) + LINE_OVERHEAD


def _line(row: dict[str, Any]) -> LogLineRecord:
    return LogLineRecord(
        row["job_id"], row["sequence"], row["attempt"], row["is_stderr"], row["line"], row["ts_us"]
    )
