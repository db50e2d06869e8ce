"""The one interface every launcher implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ProcessInfo:
    """A process (or container) the launcher started or found."""

    role: str  # "server" | "worker" | "database"
    name: str
    pid: int | None = None
    log_path: Path | None = None
    container_id: str | None = None


@dataclass
class Deployment:
    """Endpoints of a running platform, whichever launcher made it."""

    mode: str  # "local" | "live" | "containers"
    database_url: str  # full URL with password; redact before printing
    server_address: str  # host:port
    processes: list[ProcessInfo] = field(default_factory=list)
    # Live deployments must never be altered beyond test-tagged jobs.
    owned: bool = True


class Launcher(abc.ABC):
    """Starts (or attaches to) a platform and tears it down."""

    name: str

    @abc.abstractmethod
    def start(self) -> Deployment: ...

    @abc.abstractmethod
    def stop(self) -> None: ...
