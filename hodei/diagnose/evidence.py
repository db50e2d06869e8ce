"""Evidence from process logs: ERROR lines, gRPC stream errors, dispatcher cycles.

The seed report found `h2 protocol error: error reading a body from connection`
every 30 s in the server log, and no line at all from the dispatcher. These
scans turn a log file into a :class:`LogScan` the report builder reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from hodei.report.model import LogScan

#: How many lines of each kind a scan keeps (the counts stay exact).
KEEP_LINES = 20

# Levels as written by hodei.logging_setup (text: " ERROR name:"; json: "level": "ERROR")
# and by Python's default handlers / tracebacks.
_ERROR_RE = re.compile(
    r"(\sERROR\s|\sCRITICAL\s|\"level\":\s*\"(ERROR|CRITICAL)\"|^ERROR[:\s]|^Traceback )"
)

#: gRPC / HTTP/2 stream failures; the first is the seed's.
GRPC_ERROR_PATTERNS: tuple[str, ...] = (
    r"h2 protocol error",
    r"error reading a body from connection",
    r"Stream removed",
    r"GOAWAY",
    r"too_many_pings",
    r"StatusCode\.UNAVAILABLE",
    r"\bUNAVAILABLE\b",
    r"Socket closed",
    r"Connection reset by peer",
    r"keepalive watchdog timeout",
    r"RST_STREAM",
)
_GRPC_RE = re.compile("|".join(GRPC_ERROR_PATTERNS), re.IGNORECASE)

# Dispatcher cycle lines: the logger is hodei.server.dispatcher (see hodei/logging_setup.py
# format "<ts> <LEVEL> <logger>: <message>").
_DISPATCHER_RE = re.compile(r"dispatcher", re.IGNORECASE)


def is_error_line(line: str) -> bool:
    return bool(_ERROR_RE.search(line))


def is_grpc_error(line: str) -> bool:
    return bool(_GRPC_RE.search(line))


def is_dispatcher_line(line: str) -> bool:
    return bool(_DISPATCHER_RE.search(line))


def scan_lines(source: str, path: str, lines: Iterable[str]) -> LogScan:
    """Classify lines; keeps the first KEEP_LINES of each kind, counts all."""
    scan = LogScan(source=source, path=path, total_lines=0)
    errors = grpc = notable = 0
    for raw in lines:
        line = raw.rstrip("\n")
        scan.total_lines += 1
        if is_error_line(line):
            errors += 1
            if len(scan.error_lines) < KEEP_LINES:
                scan.error_lines.append(line)
        if is_grpc_error(line):
            grpc += 1
            if len(scan.grpc_errors) < KEEP_LINES:
                scan.grpc_errors.append(line)
        if is_dispatcher_line(line):
            notable += 1
            if len(scan.notable_lines) < KEEP_LINES:
                scan.notable_lines.append(line)
    # The counts matter more than the samples: say how many were left out.
    for kept, total in (
        (scan.error_lines, errors),
        (scan.grpc_errors, grpc),
        (scan.notable_lines, notable),
    ):
        if total > len(kept):
            kept.append(f"... and {total - len(kept)} more")
    return scan


def scan_file(source: str, path: Path, start_offset: int = 0) -> LogScan:
    """Scan a log file from byte `start_offset` (to look only at part of a run)."""
    if not path.exists():
        return LogScan(
            source=source, path=str(path), total_lines=0, error_lines=[f"log file missing: {path}"]
        )
    with path.open("rb") as fh:
        fh.seek(start_offset)
        text = fh.read().decode("utf-8", errors="replace")
    return scan_lines(source, str(path), text.splitlines())


def grpc_errors_in(path: Path, start_offset: int = 0) -> list[str]:
    """Every gRPC stream error line in `path` after `start_offset`."""
    if not path.exists():
        return []
    with path.open("rb") as fh:
        fh.seek(start_offset)
        text = fh.read().decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if is_grpc_error(line)]


def file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0
