"""Helpers of the metrics tests: scrape a /metrics endpoint over HTTP and read its
samples with prometheus_client's own parser (the text format as Prometheus reads it)."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


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
