"""Cost of the job log context (hodei.log_context): entering and leaving
`job_context(...)`, the handler's filter on a record with and without a job, and one
emitted JSON line to a file with and without the filter. Prints microseconds, best of
three rounds of 20,000."""

from __future__ import annotations

import logging
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

from hodei.log_context import JobContextFilter, job_context
from hodei.logging_setup import configure_logging

ROUNDS = 20_000
JOB = {"job_id": "0c5e6f7a-1b2c-4d5e-8f90-123456789abc", "correlation_id": "order-4711"}


def best_us(fn: Callable[[], object]) -> float:
    return min(timeit.repeat(fn, number=ROUNDS, repeat=3)) / ROUNDS * 1e6


def main() -> None:
    configure_logging("INFO", "json", Path(tempfile.mkdtemp()) / "bench.log")
    logger = logging.getLogger("bench")
    handler = logging.getLogger().handlers[0]
    filt = handler.filters[0]
    assert isinstance(filt, JobContextFilter)

    def enter_leave() -> None:
        with job_context(JOB["job_id"], JOB["correlation_id"], 1, "worker"):
            pass

    plain = logger.makeRecord("bench", logging.INFO, __file__, 1, "m", (), None)
    about_job = logger.makeRecord("bench", logging.INFO, __file__, 1, "m", (), None)
    about_job.job_id = JOB["job_id"]

    def emit() -> None:
        logger.info("job finished", extra={**JOB, "attempt": 1, "worker_id": "worker"})

    rows = [
        ("job_context enter + leave", best_us(enter_leave)),
        ("filter, record about no job", best_us(lambda: filt.filter(plain))),
        ("filter, record naming a job", best_us(lambda: filt.filter(about_job))),
        ("JSON line to a file, with the filter", best_us(emit)),
    ]
    handler.removeFilter(filt)
    rows.append(("JSON line to a file, without it", best_us(emit)))
    for name, us in rows:
        print(f"{name:40s} {us:7.2f} us")


if __name__ == "__main__":
    main()
