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
    assert scan.grpc_errors == [SEED_H2, LINES[4], LINES[9]]
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
    assert grpc_errors_in(log, offset) == [LINES[4]]
    assert scan_file("server", log, offset).total_lines == 2
    assert scan_file("server", log).grpc_errors == [SEED_H2, LINES[4]]


def test_a_missing_log_file_is_reported_not_ignored(tmp_path: Path) -> None:
    scan = scan_file("worker-9", tmp_path / "nope.log")
    assert scan.total_lines == 0
    assert scan.error_lines and "log file missing" in scan.error_lines[0]
