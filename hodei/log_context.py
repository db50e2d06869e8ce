"""The job a piece of code is working for, so that every log line about a job names it.

The server (a submission, a RunJob push, a worker's message about an attempt) and the
worker (a RunJob and the task that runs its attempt) enter `job_context(...)`; every
record logged inside it, by any module, and by the tasks started inside it (asyncio
copies the context into a new task), gets `job_id`, `correlation_id`, `attempt` and
`worker_id` from it through `JobContextFilter`, which hodei.logging_setup installs on
the one handler. Fields a call passes in `extra=` win over the context's.

A line that names a job but not its correlation id (a rejected worker message, whose
wire form carries only the job id and attempt) gets the id the process last logged for
that job: the filter remembers the last few thousand job -> correlation pairs it saw.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import threading
from dataclasses import dataclass

#: The fields a job context gives a record, in the order the formatters print them.
JOB_FIELDS = ("job_id", "worker_id", "attempt", "correlation_id")
#: How many job -> correlation id pairs the filter keeps (about 100 bytes each).
REMEMBERED_JOBS = 4096


@dataclass(frozen=True, slots=True)
class JobLogContext:
    job_id: str
    correlation_id: str | None = None
    attempt: int | None = None
    worker_id: str | None = None

    def fields(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "worker_id": self.worker_id,
            "attempt": self.attempt,
            "correlation_id": self.correlation_id,
        }


_current: contextvars.ContextVar[JobLogContext | None] = contextvars.ContextVar(
    "hodei_job_log_context", default=None
)


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


class _Scope:
    """`with job_context(...)`: a plain class, a quarter of a generator's cost."""

    __slots__ = ("context", "token")

    def __init__(self, context: JobLogContext) -> None:
        self.context = context
        self.token: contextvars.Token[JobLogContext | None] | None = None

    def __enter__(self) -> JobLogContext:
        self.token = _current.set(self.context)
        return self.context

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            _current.reset(self.token)


def job_context(
    job_id: object,
    correlation_id: object = None,
    attempt: object = None,
    worker_id: object = None,
) -> _Scope:
    """Log lines inside this block (and the tasks it starts) are about this job. A
    field left None is taken from an enclosing context for the same job.
    `job_context(**job.log_fields)` takes a job record's fields."""
    outer = _current.get()
    same = outer if outer is not None and outer.job_id == str(job_id) else None
    context = JobLogContext(
        job_id=str(job_id),
        correlation_id=_text(correlation_id) or (same.correlation_id if same else None),
        attempt=int(str(attempt)) if attempt is not None else (same.attempt if same else None),
        worker_id=_text(worker_id) or (same.worker_id if same else None),
    )
    if context.correlation_id:
        _remember(context.job_id, context.correlation_id)
    return _Scope(context)


def current_job() -> JobLogContext | None:
    """The job the running code works for, or None."""
    return _current.get()


_seen: collections.OrderedDict[str, str] = collections.OrderedDict()
_seen_lock = threading.Lock()


def _remember(job_id: str, correlation_id: str) -> None:
    with _seen_lock:
        _seen[job_id] = correlation_id
        _seen.move_to_end(job_id)
        while len(_seen) > REMEMBERED_JOBS:
            _seen.popitem(last=False)


def _recall(job_id: str) -> str | None:
    with _seen_lock:
        return _seen.get(job_id)


class JobContextFilter(logging.Filter):
    """Fills a record's missing job fields from the job context; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        if context is not None and getattr(record, "job_id", None) in (None, context.job_id):
            for name, value in context.fields().items():
                if value is not None and getattr(record, name, None) is None:
                    setattr(record, name, value)
        job_id = getattr(record, "job_id", None)
        if job_id is not None:
            correlation_id = getattr(record, "correlation_id", None)
            if correlation_id:
                _remember(str(job_id), str(correlation_id))
            else:
                record.correlation_id = _recall(str(job_id))
        return True
