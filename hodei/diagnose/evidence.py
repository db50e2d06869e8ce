"""Evidence from process logs: ERROR lines, gRPC protocol errors told apart from
reconnects, dispatcher cycles.

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

#: HTTP/2 failures of the transport itself: a peer broke the protocol or the keepalive
#: policy, and the stream is torn down (the seed's `h2 protocol error` every 30 s).
#: These are findings.
PROTOCOL_ERROR_PATTERNS: tuple[str, ...] = (
    r"h2 protocol error",
    r"error reading a body from connection",
    r"too_many_pings",
    r"too many pings",
    r"\bENHANCE_YOUR_CALM\b",
    r"RST_STREAM",
    r"\b(PROTOCOL|FLOW_CONTROL|FRAME_SIZE)_ERROR\b",
    r"keepalive watchdog timeout",
    r"protocol bug",  # the worker: the server refused its message as invalid
)
_PROTOCOL_RE = re.compile("|".join(PROTOCOL_ERROR_PATTERNS), re.IGNORECASE)

#: A stream that ended because its peer went away (a server restarting, a network
#: blip), and the worker's reconnect attempts meanwhile: no finding by themselves. A
#: worker that never comes back is what workers.ready and workers.heartbeat name.
RECONNECT_PATTERNS: tuple[str, ...] = (
    r"\bUNAVAILABLE\b",
    r"Socket closed",
    r"Connection reset by peer",
    r"Connection refused",
    r"failed to connect to all addresses",
    r"Stream removed",
    r"GOAWAY",
    r"server closed the worker stream",
    r"worker stream (ended|lost)",
    r"reconnecting in",
)
_RECONNECT_RE = re.compile("|".join(RECONNECT_PATTERNS), re.IGNORECASE)

#: Every stream-failure pattern (protocol errors first, the seed's first of all).
GRPC_ERROR_PATTERNS: tuple[str, ...] = PROTOCOL_ERROR_PATTERNS + RECONNECT_PATTERNS

# Dispatcher cycle lines: the logger is hodei.server.dispatcher (see hodei/logging_setup.py
# format "<ts> <LEVEL> <logger>: <message>").
_DISPATCHER_RE = re.compile(r"dispatcher", re.IGNORECASE)


def is_error_line(line: str) -> bool:
    return bool(_ERROR_RE.search(line))


def is_grpc_error(line: str) -> bool:
    """An HTTP/2 protocol error: a finding (a reconnect line is not one)."""
    return bool(_PROTOCOL_RE.search(line))


def is_reconnect_line(line: str) -> bool:
    """A stream ended by its peer going away, or a reconnect attempt (and no protocol
    error on the same line)."""
    return not is_grpc_error(line) and bool(_RECONNECT_RE.search(line))


def is_stream_failure(line: str) -> bool:
    """Any line saying a gRPC stream broke, protocol error or reconnect."""
    return is_grpc_error(line) or is_reconnect_line(line)


def is_dispatcher_line(line: str) -> bool:
    return bool(_DISPATCHER_RE.search(line))


def scan_lines(source: str, path: str, lines: Iterable[str]) -> LogScan:
    """Classify lines; keeps the first KEEP_LINES of each kind, counts all."""
    scan = LogScan(source=source, path=path, total_lines=0)
    errors = grpc = reconnects = notable = 0
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
        elif is_reconnect_line(line):
            reconnects += 1
            if len(scan.reconnect_lines) < KEEP_LINES:
                scan.reconnect_lines.append(line)
        if is_dispatcher_line(line):
            notable += 1
            if len(scan.notable_lines) < KEEP_LINES:
                scan.notable_lines.append(line)
    # The counts matter more than the samples: say how many were left out.
    for kept, total in (
        (scan.error_lines, errors),
        (scan.grpc_errors, grpc),
        (scan.reconnect_lines, reconnects),
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
    """Every line of `path` after `start_offset` saying a gRPC stream broke (protocol
    errors and reconnects alike: on an idle deployment neither should happen)."""
    if not path.exists():
        return []
    with path.open("rb") as fh:
        fh.seek(start_offset)
        text = fh.read().decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if is_stream_failure(line)]


def file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0
