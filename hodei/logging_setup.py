"""Log configuration for entry points (CLI commands, test harness launchers).

Library modules only call `logging.getLogger(__name__)` and pass structured
fields with `extra={"job_id": ..., "worker_id": ..., "attempt": ...,
"correlation_id": ...}`, or log inside `hodei.log_context.job_context(...)`, whose
fields the handler's filter adds; this module decides how they are printed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from hodei.log_context import JobContextFilter

#: Structured fields that are printed when a record carries them.
STRUCTURED_FIELDS = (
    "job_id",
    "worker_id",
    "attempt",
    "correlation_id",
    "server_id",
    "task",
    "count",
    "duration_ms",
)


class TextFormatter(logging.Formatter):
    """`2026-11-29T01:02:03.123Z ERROR hodei.server.dispatcher: msg job_id=… attempt=…`"""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        base = (
            f"{ts}.{int(record.msecs):03d}Z {record.levelname} {record.name}: {record.getMessage()}"
        )
        fields = [
            f"{name}={getattr(record, name)}"
            for name in STRUCTURED_FIELDS
            if getattr(record, name, None) is not None
        ]
        if fields:
            base += " " + " ".join(fields)
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": record.created,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in STRUCTURED_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                payload[name] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text", file: Path | None = None) -> None:
    """Install one handler on the root logger (stderr, or `file`)."""
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    # Every record about a job gets its job_id and correlation_id, whoever logs it.
    handler.addFilter(JobContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # grpc and psycopg are chatty at DEBUG; keep them at WARNING unless asked.
    for noisy in ("grpc", "psycopg", "psycopg.pool", "asyncio", "pgserver"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    if logging.getLevelName(level) > logging.DEBUG:
        # The pool writes a WARNING per failed connection attempt while the database is
        # away (32 per outage in the chaos suite's logs); the database watch says it
        # once, with its length. Its errors still show; at DEBUG its warnings do too.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def quiet_grpc_core(debug: bool = False) -> None:
    """Keep gRPC's C core from printing INFO lines on stderr; call it before grpc is
    imported (the core reads GRPC_VERBOSITY once, at import: set later, it is ignored).

    The line people saw is `fork_posix.cc:71] Other threads are currently calling into
    gRPC, skipping fork() handlers`: the core's fork handlers note every fork() made
    while its threads run, e.g. pgserver running pg_ctl as another user (a fork, not a
    vfork) when `hodei up` stops. Hodei's children all exec, so the note is noise.
    The caller's own GRPC_VERBOSITY wins; the environment reaches the workers `hodei
    up` starts.
    """
    os.environ.setdefault("GRPC_VERBOSITY", "DEBUG" if debug else "ERROR")
