"""The scaler's decisions as pure functions: which provider starts a worker for which
waiting job, which idle provisioned worker goes, and when a failing provider is kept
out (its circuit). No I/O: hodei.server.scaler reads the facts and applies the result.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A job's selector matches a worker (or a provider's tags) when every k=v of the
    selector is among the labels. An empty selector matches everything."""
    return all(labels.get(key) == value for key, value in selector.items())


def parse_selector(items: Sequence[str]) -> dict[str, str]:
    """`["pool=docker", "gpu=true"]` -> {"pool": "docker", "gpu": "true"} (the CLI's
    repeated --selector/--label); ValueError naming the bad item."""
    result: dict[str, str] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{part!r} is not KEY=VALUE")
            result[key.strip()] = value.strip()
    return result


@dataclass(frozen=True, slots=True)
class WaitingJob:
    job_id: uuid.UUID
    selector: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Capacity:
    """Free slots somewhere a job could run: a READY worker, or a provisioned worker
    not yet ready (it will take jobs soon: no second worker for the same shortage)."""

    labels: dict[str, str]
    free_slots: int


@dataclass(frozen=True, slots=True)
class ProviderView:
    name: str
    priority: int
    tags: dict[str, str]
    max_workers: int
    #: Workers it runs now (PROVISIONING and RUNNING rows).
    live_workers: int
    slots: int = 1
    healthy: bool = True
    circuit_open: bool = False

    @property
    def usable(self) -> bool:
        return self.healthy and not self.circuit_open and self.live_workers < self.max_workers


@dataclass(frozen=True, slots=True)
class ProvisionDecision:
    provider: str
    job_id: uuid.UUID
    labels: dict[str, str]
    slots: int


@dataclass(slots=True)
class _Free:
    labels: dict[str, str]
    slots: int


def plan_provisioning(
    waiting: Sequence[WaitingJob],
    capacity: Sequence[Capacity],
    providers: Sequence[ProviderView],
    limit: int = 10,
) -> list[ProvisionDecision]:
    """Workers to start, in queue order: a waiting job that no free slot (of a READY
    worker or of a worker being provisioned) matches gets one, on the highest-priority
    usable provider whose tags match its selector; each new worker's other slots serve
    the next jobs. At most `limit` per round, none beyond a provider's max_workers; a
    job no provider matches is left waiting."""
    free = [_Free(dict(c.labels), c.free_slots) for c in capacity if c.free_slots > 0]
    live = {p.name: p.live_workers for p in providers}
    ranked = sorted(providers, key=lambda p: -p.priority)  # stable: file order on ties
    decisions: list[ProvisionDecision] = []
    for job in waiting:
        slot = next(
            (s for s in free if s.slots > 0 and selector_matches(job.selector, s.labels)), None
        )
        if slot is not None:
            slot.slots -= 1
            continue
        if len(decisions) >= limit:
            continue  # later jobs may still fit the free slots counted above
        chosen = next(
            (
                p
                for p in ranked
                if p.healthy
                and not p.circuit_open
                and live[p.name] < p.max_workers
                and selector_matches(job.selector, p.tags)
            ),
            None,
        )
        if chosen is None:
            continue
        live[chosen.name] += 1
        decisions.append(
            ProvisionDecision(chosen.name, job.job_id, dict(chosen.tags), chosen.slots)
        )
        if chosen.slots > 1:
            free.append(_Free(dict(chosen.tags), chosen.slots - 1))
    return decisions


@dataclass(frozen=True, slots=True)
class IdleWorker:
    provisioned_id: uuid.UUID
    provider: str
    #: Seconds since it last ran a job (or became READY); None: it is not idle.
    idle_seconds: float | None


def plan_scale_down(
    workers: Sequence[IdleWorker], idle_ttl: Mapping[str, float]
) -> list[uuid.UUID]:
    """The provisioned workers idle past their provider's idle TTL (a provider no longer
    in the file keeps its workers until they are idle for its last known TTL: the
    caller passes 0 to remove them at once)."""
    return [
        w.provisioned_id
        for w in workers
        if w.idle_seconds is not None
        and w.provider in idle_ttl
        and w.idle_seconds >= idle_ttl[w.provider]
    ]


@dataclass(slots=True)
class Circuit:
    """A provider's circuit breaker: `threshold` failures in a row open it for
    `cooldown` seconds; then one attempt is let through (half-open): a success closes
    it, a failure opens it again. Times are the caller's clock (monotonic seconds)."""

    threshold: int
    cooldown: float
    failures: int = 0
    opened_at: float | None = None
    last_error: str = ""

    def is_open(self, now: float) -> bool:
        return self.opened_at is not None and now - self.opened_at < self.cooldown

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.last_error = ""

    def failure(self, now: float, error: str) -> bool:
        """Count a failure; True when this one opened the circuit."""
        self.failures += 1
        self.last_error = error
        half_open = self.opened_at is not None and not self.is_open(now)
        if self.failures >= self.threshold or half_open:
            was_open = self.is_open(now)
            self.opened_at = now
            return not was_open
        return False
