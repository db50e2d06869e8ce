"""The log stream's ordering rules (no gap, no duplicate, ends with the job), on the
in-memory database: cheap enough to try many interleavings."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from hodei.db.testing import InMemoryDatabase
from hodei.errors import StaleAttempt
from hodei.server import logs as logs_module
from hodei.server.logs import LogBus, LogService
from hodei.server.models import AttemptRef, LogChunk, LogEntryIn

WORKER = uuid.uuid4()


def make() -> tuple[InMemoryDatabase, LogService, dict[str, Any]]:
    db = InMemoryDatabase()
    service = LogService(db, LogBus())  # type: ignore[arg-type]
    job = db.add_job(worker_id=WORKER)
    return db, service, job


def chunk(start: int, count: int) -> LogChunk:
    now = datetime.now(UTC)
    return LogChunk.of([LogEntryIn(False, f"l{start + i}", now) for i in range(count)])


async def produce(
    db: InMemoryDatabase,
    service: LogService,
    job: dict[str, Any],
    sent: int,
    sizes: list[int],
    rng: random.Random,
) -> None:
    ref = AttemptRef(job["id"], 1)
    for size in sizes:
        # Sometimes resend an overlapping batch, as after a reconnect.
        start = max(0, sent - rng.randint(0, 3)) if rng.random() < 0.3 else sent
        await service.ingest(WORKER, ref, start, chunk(start, sent + size - start))
        sent += size
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
    db.jobs[job["id"]]["state"] = "SUCCEEDED"
    service.bus.job_changed(job["id"])


async def consume(service: LogService, job_id: uuid.UUID, **kwargs: Any) -> list[int]:
    seen = []
    async for lines in service.follow(job_id, **kwargs):
        seen += [line.sequence for line in lines]
    return seen


@pytest.mark.parametrize("seed", range(20))
async def test_follow_has_no_gap_and_no_duplicate(seed: int) -> None:
    rng = random.Random(seed)
    db, service, job = make()
    sizes = [rng.randint(1, 300) for _ in range(rng.randint(1, 15))]
    total = sum(sizes)
    ref = AttemptRef(job["id"], 1)
    early = rng.randint(0, len(sizes))  # batches written before the subscriber starts
    sent = 0
    for size in sizes[:early]:
        await service.ingest(WORKER, ref, sent, chunk(sent, size))
        sent += size
    consumer = asyncio.create_task(consume(service, job["id"]))
    await asyncio.sleep(0)
    await produce(db, service, job, sent, sizes[early:], rng)
    seen = await asyncio.wait_for(consumer, 5)
    assert seen == list(range(1, total + 1))
    assert [r["line"] for r in db.job_logs] == [f"l{i}" for i in range(total)]


async def test_overflowing_subscriber_reads_the_table_instead(monkeypatch: Any) -> None:
    monkeypatch.setattr(logs_module, "SUBSCRIBER_BUFFER", 10)
    db, service, job = make()
    consumer = asyncio.create_task(consume(service, job["id"]))
    await asyncio.sleep(0)
    ref = AttemptRef(job["id"], 1)
    for i in range(10):
        await service.ingest(WORKER, ref, i * 7, chunk(i * 7, 7))  # overflows the buffer
    db.jobs[job["id"]]["state"] = "FAILED"
    service.bus.job_changed(job["id"])
    assert await asyncio.wait_for(consumer, 5) == list(range(1, 71))


async def test_tail_and_after_sequence() -> None:
    db, service, job = make()
    ref = AttemptRef(job["id"], 1)
    await service.ingest(WORKER, ref, 0, chunk(0, 20))
    db.jobs[job["id"]]["state"] = "SUCCEEDED"
    assert await consume(service, job["id"], tail_lines=3) == [18, 19, 20]
    assert await consume(service, job["id"], after_sequence=15) == [16, 17, 18, 19, 20]
    assert await consume(service, job["id"], include_history=False) == []


async def test_other_worker_is_fenced_and_nothing_is_written() -> None:
    db, service, job = make()
    with pytest.raises(StaleAttempt):
        await service.ingest(uuid.uuid4(), AttemptRef(job["id"], 1), 0, chunk(0, 5))
    with pytest.raises(StaleAttempt):
        await service.ingest(WORKER, AttemptRef(job["id"], 2), 0, chunk(0, 5))
    assert db.job_logs == [] and db.jobs[job["id"]]["log_seq"] == 0


async def test_a_line_over_the_stored_bound_is_stored_in_pieces(monkeypatch: Any) -> None:
    monkeypatch.setattr(logs_module, "MAX_STORED_LINE_BYTES", 10)
    monkeypatch.setattr(logs_module.split_long_lines, "__defaults__", (10,))
    db, service, job = make()
    ref = AttemptRef(job["id"], 1)
    now = datetime.now(UTC)
    long = "x" * 25
    batch = LogChunk.of([LogEntryIn(False, "a", now), LogEntryIn(True, long, now)])
    # The worker's cursor counts its 2 lines; the sequence counts the 4 rows.
    assert await service.ingest(WORKER, ref, 0, batch) == 2
    assert [r["line"] for r in db.job_logs] == ["a", "x" * 10, "x" * 10, "x" * 5]
    assert [r["is_stderr"] for r in db.job_logs] == [False, True, True, True]
    assert db.jobs[job["id"]]["log_seq"] == 4
    # The resent batch (after a reconnect) is recognised by the worker's numbering.
    assert await service.ingest(WORKER, ref, 0, batch) == 2
    assert len(db.job_logs) == 4


async def test_pages_are_bounded_by_bytes(monkeypatch: Any) -> None:
    monkeypatch.setattr(logs_module, "PAGE_BYTES", 100)
    db, service, job = make()
    ref = AttemptRef(job["id"], 1)
    now = datetime.now(UTC)
    lines = ["y" * 30] * 10
    await service.ingest(WORKER, ref, 0, LogChunk.of([LogEntryIn(False, x, now) for x in lines]))
    db.jobs[job["id"]]["state"] = "SUCCEEDED"
    page, complete = await service.read(job["id"], 0, 1000)
    # 30 bytes + 32 of overhead a line: one line more would pass 100 bytes.
    assert [line.sequence for line in page] == [1] and not complete
    pages = [[line.sequence for line in p] async for p in service.follow(job["id"])]
    assert pages == [[i] for i in range(1, 11)]
