"""hodei_db_pool_connections{pool,state} and hodei_db_pool_requests_waiting{pool}, read
from psycopg_pool's counters at scrape time: no loop keeps them, and a scrape sees the
pools as they are (the server's role pools: api, worker-stream, dispatcher, relay...)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class StatsPool(Protocol):
    def get_stats(self) -> dict[str, int]: ...


class PoolCollector(Collector):
    def __init__(self) -> None:
        #: The pools by role, set once the server's database is open (empty before).
        self.pools: Mapping[str, StatsPool] = {}

    def describe(self) -> Iterator[Any]:
        return self._families({})

    def collect(self) -> Iterator[Any]:
        # get_stats() copies a few integers; safe from the HTTP server's thread.
        return self._families({role: pool.get_stats() for role, pool in dict(self.pools).items()})

    @staticmethod
    def _families(stats: Mapping[str, dict[str, int]]) -> Iterator[Any]:
        connections = GaugeMetricFamily(
            "hodei_db_pool_connections",
            "Connections of this server's database pools, in use or idle",
            labels=["pool", "state"],
        )
        waiting = GaugeMetricFamily(
            "hodei_db_pool_requests_waiting",
            "Callers of this server waiting for a connection of the pool",
            labels=["pool"],
        )
        for role, s in stats.items():
            size, idle = s.get("pool_size", 0), s.get("pool_available", 0)
            connections.add_metric([role, "in_use"], max(0, size - idle))
            connections.add_metric([role, "idle"], idle)
            waiting.add_metric([role], s.get("requests_waiting", 0))
        yield connections
        yield waiting
