"""The provider interface: what the scaler asks of any place that can start workers
(a local process, a Docker daemon, a Kubernetes cluster).

Plain data in, plain data out, no I/O here. Every method is async: providers whose
client blocks (docker, kubernetes) run its calls in a thread (asyncio.to_thread).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

#: Labels every provider puts on what it starts (container labels, pod labels, the
#: process provider's own bookkeeping), so that `list()` finds its workers again
#: after a server restart.
LABEL_PROVIDER = "io.hodei.provider"
LABEL_WORKER_NAME = "io.hodei.worker-name"
LABEL_JOB = "io.hodei.job"
LABEL_MANAGED = "io.hodei.managed"


class ProvisionedState(enum.StrEnum):
    """What the provider sees of a worker it started (not the worker's own state)."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    EXITED = "EXITED"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class ProvisionRequest:
    """Everything a provider needs to start one worker."""

    #: A fresh single-use worker token (`hodei_<id>_<secret>`): it registers one worker.
    token: str
    #: HOST:PORT the worker dials (`hodei worker --server`).
    server_address: str
    #: The worker's name (`--name`), unique: the scaler finds the registration by it.
    worker_name: str
    slots: int = 1
    #: The worker's labels (the provider's tags): jobs select workers by them.
    labels: dict[str, str] = field(default_factory=dict)
    #: The queued job whose wait triggered this worker (None: no particular job).
    job_id: uuid.UUID | None = None
    #: Extra HODEI_* variables for the worker (TLS CA path, log format...).
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProvisionedWorker:
    """One worker a provider started, as the provider sees it."""

    provider: str
    #: The provider's own id: container id, pod name, process id.
    handle: str
    worker_name: str
    state: ProvisionedState
    created_at: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    ok: bool
    #: One line: "docker 27.5.1 reachable", "cannot reach the Docker daemon: ..."
    detail: str = ""


class ProvisioningError(Exception):
    """A provider could not start a worker. `str()` is one line naming the cause (an
    image missing, the daemon down, a quota): it goes into the ProvisioningFailed event."""


@runtime_checkable
class Provider(Protocol):
    """A place that can start workers. `name` is the providers.yaml entry's name."""

    name: str

    async def provision(self, request: ProvisionRequest) -> ProvisionedWorker:
        """Start one worker; raise ProvisioningError (one line) when it cannot."""
        ...

    async def terminate(self, handle: str) -> None:
        """Stop and remove the worker `handle` names; no error if it is already gone."""
        ...

    async def list(self) -> list[ProvisionedWorker]:
        """The workers this provider started and that still exist."""
        ...

    async def health(self) -> ProviderHealth:
        """Whether the provider can be reached now (a daemon ping, an API call)."""
        ...

    async def capacity(self) -> int:
        """Free places under the entry's max_workers (0: full)."""
        ...

    async def close(self) -> None:
        """Release clients and connections (the server stops)."""
        ...
