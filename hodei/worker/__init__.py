"""The Hodei worker agent: `run(settings)` runs one worker process until a signal."""

from hodei.worker.service import run

__all__ = ["run"]
