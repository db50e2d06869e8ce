"""Following, stopping and describing one running container: the docker plumbing
under the `containers` launcher (harness.launchers.containers), which decides what
runs where."""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.launchers.docker_images import first_line

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

logger = logging.getLogger(__name__)


class LogFollower(threading.Thread):
    """Copies a container's stdout+stderr into a file until the container stops."""

    def __init__(self, container: Any, path: Path) -> None:
        super().__init__(name=f"logs-{path.stem}", daemon=True)
        self.container = container
        self.path = path

    def run(self) -> None:
        try:
            with self.path.open("ab") as out:
                for chunk in self.container.logs(stream=True, follow=True):
                    out.write(chunk)
                    out.flush()
        except Exception as exc:  # the container vanished: the log ends here
            logger.debug("log follower %s ended: %s", self.path.name, exc)


def disable_ryuk() -> None:
    # Ryuk needs its own image from a registry; every container of a run carries the
    # run's label and stop() removes them, so the reaper is not needed.
    from testcontainers.core.config import testcontainers_config

    testcontainers_config.ryuk_disabled = True


def stop_quietly(container: DockerContainer, grace_s: int = 5) -> None:
    """SIGTERM, then SIGKILL after grace_s; a container already gone is fine."""
    with contextlib.suppress(Exception):
        container.get_wrapped_container().stop(timeout=grace_s)


def log_tail(container: Any, lines: int = 10) -> str:
    try:
        text = container.logs(tail=lines).decode("utf-8", errors="replace")
    except Exception as exc:
        return f"<no log: {first_line(exc)}>"
    return " | ".join(text.splitlines()) or "<empty log>"
