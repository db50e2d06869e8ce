"""How many jobs a worker holds beyond its slots (prefetch), when it adapts.

A worker's slot stays empty from the moment its process ends until the server's next
RunJob arrives: the result is stored, the dispatcher runs a cycle, the RunJob travels
(20-30 ms on the development machine under load). For jobs that live a few
milliseconds that round trip is most of each slot's time, and jobs waiting on the
worker fill it (issue 16: 1 x 4 slots went from 117 to 390 jobs/s with 16). For long
jobs the same jobs would wait behind a busy worker while another one idles. So a worker
holds what its slots get through in WAIT_S:

    prefetch = slots * WAIT_S / typical run time, within [0, MAX_PREFETCH]

which bounds what a prefetched job waits on the worker to about WAIT_S, whatever the
job: `true` (~5-15 ms) on 4 slots gets 26-32, 100 ms jobs 4, jobs of a second none.
The run time is measured on the worker (process start to end handled), so a busy
worker sees its jobs as longer and holds fewer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Most jobs a worker holds beyond its slots by itself (a fixed setting may say more).
MAX_PREFETCH = 32
#: About the longest a prefetched job waits on the worker, seconds; several times the
#: round trip it covers.
WAIT_S = 0.1
#: Weight of the newest run time in the moving average.
_ALPHA = 0.2


@dataclass
class PrefetchGauge:
    """The moving average of a worker's run times, and the prefetch it asks for."""

    slots: int
    current: int
    run_s: float | None = None

    def job_ended(self, run_s: float) -> int | None:
        """Note one job's run time; the new prefetch when it changed enough to say so
        (to or from 0, or by half or more), else None."""
        run_s = max(run_s, 0.0005)
        self.run_s = run_s if self.run_s is None else self.run_s + _ALPHA * (run_s - self.run_s)
        wanted = wanted_prefetch(self.slots, self.run_s)
        if wanted == self.current:
            return None
        small, large = sorted((wanted, self.current))
        if small == 0 or large >= 1.5 * small:
            self.current = wanted
            return wanted
        return None


def wanted_prefetch(slots: int, run_s: float) -> int:
    """Jobs to hold beyond `slots`: what they get through in WAIT_S at this pace."""
    if run_s <= 0:
        return MAX_PREFETCH
    return max(0, min(MAX_PREFETCH, math.floor(slots * WAIT_S / run_s)))
