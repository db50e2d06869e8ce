"""The binary COPY encoder for job_logs rows (PostgreSQL accepting it is covered by
the integration tests, which ingest through it)."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest

from hodei.db.copy_format import (
    HEADER,
    PG_EPOCH_US,
    TRAILER,
    decode_log_rows,
    iter_log_rows,
)

JOB = uuid.UUID("0b7f3f0e-0000-4000-8000-000000000001")


def encode_log_rows(*args: Any) -> bytes:
    return b"".join(iter_log_rows(*args))


def test_rows_round_trip_with_consecutive_sequences() -> None:
    lines = ["hello", "", "ü" * 3000, "tab\there"]
    micros = [1_700_000_000_000_001, 1_700_000_000_000_002, 0, 1_700_000_000_999_999]
    data = encode_log_rows(JOB, 41, 3, [False, True, False, True], lines, micros)
    assert data.startswith(HEADER) and data.endswith(TRAILER)
    assert decode_log_rows(data) == [
        (JOB, 41, 3, False, "hello", micros[0]),
        (JOB, 42, 3, True, "", micros[1]),
        (JOB, 43, 3, False, "ü" * 3000, 0),
        (JOB, 44, 3, True, "tab\there", micros[3]),
    ]


def test_field_layout_is_postgresql_binary_copy() -> None:
    data = encode_log_rows(JOB, 7, 2, [True], ["ñ"], [PG_EPOCH_US + 5])
    row = data[len(HEADER) : -len(TRAILER)]
    assert struct.unpack_from("!h", row) == (6,)  # six fields
    assert struct.unpack_from("!i16s", row, 2) == (16, JOB.bytes)
    assert struct.unpack_from("!iq", row, 22) == (8, 7)  # int8 sequence
    assert struct.unpack_from("!ii", row, 34) == (4, 2)  # int4 attempt
    assert struct.unpack_from("!i?", row, 42) == (1, True)  # bool
    assert struct.unpack_from("!iq", row, 47) == (8, 5)  # timestamptz: µs since 2000
    assert struct.unpack_from("!i", row, 59) == (2,) and row[63:] == "ñ".encode()


def test_an_empty_batch_is_a_valid_payload_and_mismatched_columns_are_refused() -> None:
    assert encode_log_rows(JOB, 1, 1, [], [], []) == HEADER + TRAILER
    assert decode_log_rows(HEADER + TRAILER) == []
    with pytest.raises(ValueError, match="same length"):
        encode_log_rows(JOB, 1, 1, [False], ["a", "b"], [0, 0])
    with pytest.raises(ValueError, match="not a binary COPY"):
        decode_log_rows(b"garbage")


def test_pieces_join_to_the_whole_payload() -> None:
    lines = [f"line {i}" for i in range(10)]
    args = (JOB, 1, 1, [False] * 10, lines, list(range(10)))
    pieces = list(iter_log_rows(*args, piece_rows=4))
    assert pieces[0] == HEADER and pieces[-1] == TRAILER and len(pieces) == 5  # 4 + 4 + 2 rows
    assert b"".join(pieces) == encode_log_rows(*args)
    assert [row[1] for row in decode_log_rows(b"".join(pieces))] == list(range(1, 11))
