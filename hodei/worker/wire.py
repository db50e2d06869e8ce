"""Protobuf wire encoding of `WorkerMessage{logs: LogBatch}` straight from line bytes.

The worker sends its lines as `LogSegment`s (lines read together from one stream,
one timestamp for all of them). Building the message with the generated classes
costs about a microsecond per line; writing the same bytes here costs a table
lookup and a concatenation per line, driven from C (map, join). The output is plain
proto3 wire format for the messages in proto/hodei/api/v1/workers.proto, checked by
unit tests against the generated classes' own serialization, byte for byte. Every
other message goes through the generated classes; several ready together are
wrapped as a `WorkerBatch` around their serialized bytes (`encode_batch`).
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.timestamp_pb2 import Timestamp

from hodei.api.v1 import common_pb2, workers_pb2
from hodei.worker.lines import Segment

# Field tags: (field_number << 3) | wire_type; wire type 0 = varint, 2 = bytes.
_WM_LOGS = b"\x2a"  # WorkerMessage.logs = 5
_WM_BATCH = b"\x3a"  # WorkerMessage.batch = 7
_WB_MESSAGE = b"\x0a"  # WorkerBatch.messages = 1
_LB_REF = b"\x0a"  # LogBatch.ref = 1
_LB_FIRST_LINE = b"\x10"  # LogBatch.first_line = 2
_LB_SEGMENT = b"\x22"  # LogBatch.segments = 4
_LS_STDERR = b"\x08\x01"  # LogSegment.is_stderr = 1 (true; false is omitted)
_LS_TS = b"\x12"  # LogSegment.timestamp = 2
_LS_LINE = b"\x1a"  # LogSegment.lines = 3 (repeated: an empty line is still written)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


_SMALL = [varint(i) for i in range(1 << 14)]


def _v(value: int) -> bytes:
    return _SMALL[value] if value < 16384 else varint(value)


#: For each line length n below the limit: the bytes before the line (tag, length).
_TABLE_LIMIT = 16384
_LINE_PREFIX = [_LS_LINE + _v(n) for n in range(_TABLE_LIMIT)]


def _line_prefix(n: int) -> bytes:
    return _LINE_PREFIX[n] if n < _TABLE_LIMIT else _LS_LINE + varint(n)


def _segment(seg: Segment) -> bytes:
    ts = Timestamp()
    ts.FromNanoseconds(seg.ts_ns)
    ts_body = ts.SerializeToString()
    head = (_LS_STDERR if seg.is_stderr else b"") + _LS_TS + _v(len(ts_body)) + ts_body
    lines = seg.lines
    short = max(map(len, lines)) < _TABLE_LIMIT
    prefix = _LINE_PREFIX.__getitem__ if short else _line_prefix
    body = head + b"".join(map(bytes.__add__, map(prefix, map(len, lines)), lines))
    return _LB_SEGMENT + _v(len(body)) + body


def encode_log_batch(ref: common_pb2.JobRef, first_line: int, segments: Iterable[Segment]) -> bytes:
    """Serialized `WorkerMessage(logs=LogBatch(ref, first_line, segments))`."""
    ref_body = ref.SerializeToString()
    parts: list[bytes] = [_LB_REF, _v(len(ref_body)), ref_body]
    if first_line:
        parts += (_LB_FIRST_LINE, varint(first_line))
    parts.extend(_segment(seg) for seg in segments if seg.lines)
    batch = b"".join(parts)
    return _WM_LOGS + _v(len(batch)) + batch


def encode_batch(messages: Iterable[bytes]) -> bytes:
    """Serialized `WorkerMessage(batch=WorkerBatch(messages))` from serialized messages."""
    body = b"".join(_WB_MESSAGE + varint(len(m)) + m for m in messages)
    return _WM_BATCH + varint(len(body)) + body


def serialize(message: workers_pb2.WorkerMessage | bytes) -> bytes:
    """Request serializer for the worker stream: pre-encoded bytes pass through."""
    if isinstance(message, bytes):
        return message
    return message.SerializeToString()
