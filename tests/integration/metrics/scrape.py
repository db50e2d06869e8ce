"""Helpers of the metrics tests: scrape a /metrics endpoint over HTTP and read its
samples with prometheus_client's own parser (the text format as Prometheus reads it);
read the tables the figures must agree with."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Callable
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from harness.waits import wait_for_async


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        assert reply.status == 200, f"{url}: HTTP {reply.status}"
        return str(reply.read().decode())


async def scrape(port: int, host: str = "127.0.0.1") -> Scrape:
    text = await asyncio.to_thread(fetch, f"http://{host}:{port}/metrics")
    return Scrape(text)


class Scrape:
    """One exposition: its text, its families by name, its samples."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: list[Sample] = [s for f in self.families.values() for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """The one sample `name` whose labels include `labels` (0 when there is none)."""
        found = [
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert len(found) <= 1, f"{name}{labels}: {len(found)} samples"
        return found[0] if found else 0.0

    def total(self, name: str, **labels: str) -> float:
        """The sum of every sample `name` whose labels include `labels`."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )


async def wait_scrape(port: int, what: str, ok: Callable[[Scrape], bool]) -> Scrape:
    """Scrape until `ok` holds (the database-wide gauges follow the tables a refresh
    later)."""
    page: Scrape = await wait_for_async(what, lambda: scrape(port), ok, 15)
    return page


async def tables(db_url: str) -> dict[str, Any]:
    """The figures the metrics must agree with, read from the tables."""
    async with await psycopg.AsyncConnection.connect(db_url) as conn:

        async def one(sql: str) -> Any:
            cur = await conn.execute(sql)
            row = await cur.fetchone()
            assert row is not None
            return row[0]

        async def by_key(sql: str) -> dict[str, int]:
            cur = await conn.execute(sql)
            return {str(k): int(v) for k, v in await cur.fetchall()}

        return {
            "jobs": await one("SELECT count(*) FROM jobs"),
            "attempts": await one("SELECT coalesce(sum(attempts), 0) FROM jobs"),
            "jobs_by_state": await by_key("SELECT state, count(*) FROM jobs GROUP BY state"),
            "queue": await one("SELECT count(*) FROM job_queue"),
            "log_lines": await one("SELECT count(*) FROM job_logs"),
            "log_bytes": await one("SELECT coalesce(sum(octet_length(line)), 0) FROM job_logs"),
            "bytes_read": await one("SELECT coalesce(sum(output_bytes_read), 0) FROM jobs"),
            "workers_by_state": await by_key("SELECT state, count(*) FROM workers GROUP BY state"),
            "slots": await one(
                "SELECT coalesce(sum(slots), 0) FROM workers"
                " WHERE state NOT IN ('TERMINATED', 'LOST')"
            ),
            "unpublished": await one(
                "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"
            ),
        }
