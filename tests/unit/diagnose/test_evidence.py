"""hodei.diagnose.evidence: log lines classified as the seed report read them."""

from __future__ import annotations

from pathlib import Path

from hodei.diagnose.evidence import KEEP_LINES, file_size, grpc_errors_in, scan_file, scan_lines

SEED_H2 = "ERROR: h2 protocol error: error reading a body from connection"
LINES = [
    "2026-11-29T01:00:00.000Z INFO hodei.server.app: server listening on 127.0.0.1:50051",
    "2026-11-29T01:00:01.000Z INFO hodei.server.dispatcher: dispatched 2 job(s) count=2",
    "2026-11-29T01:00:02.000Z ERROR hodei.server.jobs: store failed job_id=1",
    SEED_H2,
    "2026-11-29T01:00:03.000Z WARNING hodei.worker.connection: stream lost: "
    "StatusCode.UNAVAILABLE Socket closed",
    '{"ts": 1, "level": "ERROR", "logger": "hodei.worker", "message": "boom"}',
    "2026-11-29T01:00:04.000Z INFO hodei.worker.agent: job finished: SUCCEEDED exit_code=0",
    "Traceback (most recent call last):",
    '  File "x.py", line 1, in <module>',
    "grpc: Received RST_STREAM with error code 2; GOAWAY received; Stream removed",
]


def test_scan_classifies_error_grpc_and_dispatcher_lines() -> None:
    scan = scan_lines("server", "/tmp/server.log", LINES)
    assert scan.total_lines == len(LINES)
    assert scan.error_lines == [LINES[2], SEED_H2, LINES[5], LINES[7]]
    # A stream lost to a peer going away is a reconnect, not a protocol error.
    assert scan.grpc_errors == [SEED_H2, LINES[9]]
    assert scan.reconnect_lines == [LINES[4]]
    assert scan.notable_lines == [LINES[1]]


def test_benign_lines_are_not_errors() -> None:
    scan = scan_lines("worker-1", "w.log", [LINES[0], LINES[6]])
    assert scan.error_lines == [] and scan.grpc_errors == [] and scan.notable_lines == []


def test_counts_stay_exact_beyond_the_kept_sample() -> None:
    scan = scan_lines("server", "s.log", [SEED_H2] * (KEEP_LINES + 7))
    assert len(scan.grpc_errors) == KEEP_LINES + 1
    assert scan.grpc_errors[-1] == "... and 7 more"


def test_scan_file_from_an_offset(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(SEED_H2 + "\n")
    offset = file_size(log)
    with log.open("a") as fh:
        fh.write(LINES[0] + "\n" + LINES[4] + "\n")
    assert grpc_errors_in(log, offset) == [LINES[4]]  # any broken stream, reconnects too
    assert scan_file("server", log, offset).total_lines == 2
    assert scan_file("server", log).grpc_errors == [SEED_H2]


def test_a_missing_log_file_is_reported_not_ignored(tmp_path: Path) -> None:
    scan = scan_file("worker-9", tmp_path / "nope.log")
    assert scan.total_lines == 0
    assert scan.error_lines and "log file missing" in scan.error_lines[0]


RESTART = [
    # A worker's log across a server restart (hodei.worker.connection, real lines).
    "2026-12-07T02:00:01.374Z WARNING hodei.worker.connection: server closed the worker "
    "stream; reconnecting worker_id=7c8e",
    "2026-12-07T02:00:01.374Z INFO hodei.worker.connection: reconnecting in 0.07 s "
    "(failure 1) worker_id=7c8e",
    "2026-12-07T02:00:01.449Z WARNING hodei.worker.connection: worker stream ended: "
    "UNAVAILABLE failed to connect to all addresses; last error: UNKNOWN: "
    "ipv4:127.0.0.1:45311: Failed to connect to remote host: Connection refused",
    "2026-12-07T02:00:01.841Z INFO hodei.worker.agent: stream open worker_id=7c8e",
]
PROTOCOL = [
    "2026-12-07T02:00:01.449Z WARNING hodei.worker.connection: worker stream ended: "
    "UNAVAILABLE GOAWAY received; Error code: 11; Debug data: too_many_pings",
    "E1207 02:00:01 chttp2_transport.cc: ENHANCE_YOUR_CALM (too many pings)",
    "2026-12-07T02:00:02.000Z ERROR hodei.worker.connection: server refused our message "
    "as invalid (protocol bug): bad frame",
]


def test_reconnects_after_a_restart_are_not_protocol_errors() -> None:
    scan = scan_lines("worker", "w.log", RESTART)
    assert scan.grpc_errors == []
    assert scan.reconnect_lines == RESTART[:3]


def test_protocol_errors_stay_errors_even_when_the_stream_reconnects() -> None:
    scan = scan_lines("worker", "w.log", PROTOCOL + RESTART)
    assert scan.grpc_errors == PROTOCOL
    assert scan.reconnect_lines == RESTART[:3]
