"""The jobs a worker holds beyond its slots: how many it takes (a fixed
HODEI_WORKER_PREFETCH, or adapted to its jobs' run times by hodei.domain.prefetch), and
the prefetched attempts themselves, acknowledged, in the order received, each with its
RunJob, started as slots free without waiting for the server (docs/worker.md,
"Prefetch"). The agent decides when; this holds what."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

from hodei.api.v1 import workers_pb2
from hodei.domain.prefetch import PrefetchGauge
from hodei.worker.attempt import Attempt, Key


class Prefetched:
    def __init__(self, slots: int, count: int, adaptive: bool) -> None:
        #: How many jobs the worker takes beyond its slots now; the server hears of
        #: each change (Hello.prefetch, Heartbeat.prefetch).
        self.count = count
        self._gauge = PrefetchGauge(slots, count) if adaptive else None
        self._waiting: collections.deque[tuple[Attempt, workers_pb2.RunJob]] = collections.deque()

    @property
    def full(self) -> bool:
        return len(self._waiting) >= self.count

    @property
    def waiting(self) -> int:
        """Entries held (some may have been dropped or cancelled since)."""
        return len(self._waiting)

    @property
    def typical_run_s(self) -> float | None:
        return None if self._gauge is None else self._gauge.run_s

    def hold(self, att: Attempt, run: workers_pb2.RunJob) -> None:
        att.queued = True
        self._waiting.append((att, run))

    def take(
        self, current: Callable[[Key], Attempt | None]
    ) -> tuple[Attempt, workers_pb2.RunJob] | None:
        """The oldest held attempt, taken off, with its RunJob; None when none is left.
        Those the agent no longer holds (`current` says which it does) or that were
        cancelled while they waited are dropped on the way."""
        while self._waiting:
            att, run = self._waiting.popleft()
            if current(att.key) is att and att.queued:
                att.queued = False
                return att, run
        return None

    def job_ended(self, att: Attempt) -> int | None:
        """An attempt's process ended: the new count when the adaptive rule changes
        it, else None."""
        if self._gauge is None or att.launched_at is None:
            return None
        changed = self._gauge.job_ended(time.monotonic() - att.launched_at)
        if changed is not None:
            self.count = changed
        return changed
