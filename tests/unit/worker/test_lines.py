"""Line splitting, UTF-8 cleaning, the attempt log buffer and the LogBatch wire encoding."""

from __future__ import annotations

from hodei.api.v1 import common_pb2, workers_pb2
from hodei.worker.lines import LineSplitter, LogBuffer, clean_utf8
from hodei.worker.wire import encode_batch, encode_log_batch, serialize


def test_splitter_joins_lines_across_chunks_and_keeps_the_tail() -> None:
    s = LineSplitter()
    assert s.feed(b"hel") == []
    assert s.feed(b"lo\nwor") == [b"hello"]
    assert s.feed(b"ld\n\nx") == [b"world", b""]
    assert s.finish() == [b"x"]
    assert s.finish() == []


def test_invalid_utf8_and_nul_are_replaced() -> None:
    s = LineSplitter()
    lines = s.feed(b"ok \xff\xfe bad\nnul\x00byte\n")
    assert [line.decode() for line in lines] == ["ok \ufffd\ufffd bad", "nul\ufffdbyte"]
    assert clean_utf8("ñandú".encode()) == "ñandú".encode()


def test_multibyte_character_split_across_chunks_survives() -> None:
    data = "añb\n".encode()
    s = LineSplitter()
    out = s.feed(data[:2]) + s.feed(data[2:])  # cut inside the 2-byte "ñ"
    assert out == ["añb".encode()]


def test_long_lines_are_split_at_the_cap_on_character_boundaries() -> None:
    s = LineSplitter(max_line_bytes=10)
    # Line without newline fed in small chunks, then one with a newline in one chunk.
    out: list[bytes] = []
    for i in range(0, 25, 5):
        out += s.feed(b"abcde"[: min(5, 25 - i)])
    out += s.feed(b"\n" + "é".encode() * 8 + b"\n")
    assert out[:3] == [b"abcdeabcde", b"abcdeabcde", b"abcde"]
    # 16 bytes of 2-byte characters, cap 10: split after 5 characters, never inside one.
    assert [p.decode() for p in out[3:]] == ["ééééé", "ééé"]
    assert all(len(p) <= 10 for p in out)


def test_one_mebibyte_cap_by_default() -> None:
    s = LineSplitter()
    out = s.feed(b"x" * (3 * 1024 * 1024 + 5) + b"\n")
    assert [len(p) for p in out] == [1024 * 1024] * 3 + [5]


def test_log_buffer_take_persist_and_rewind() -> None:
    buf = LogBuffer()
    buf.append(False, [b"a", b"b", b"c"], 1, now=0.0)
    buf.append(True, [b"d", b"e"], 2, now=0.1)
    assert (buf.total, buf.unsent, buf.unsent_since) == (5, 5, 0.0)
    first, segs = buf.take(4, 1 << 20, now=1.0)
    assert first == 0
    assert [(s.start, s.is_stderr, s.lines) for s in segs] == [
        (0, False, [b"a", b"b", b"c"]),
        (3, True, [b"d"]),
    ]
    assert (buf.sent, buf.unsent, buf.unsent_since) == (4, 1, 1.0)
    buf.persisted(2)  # server holds lines 0 and 1
    assert (buf.base, buf.held) == (2, 3)
    buf.rewind(now=2.0)  # a reconnect: resend from line 2
    first, segs = buf.take(10, 1 << 20, now=3.0)
    assert first == 2
    assert [(s.start, s.lines) for s in segs] == [(2, [b"c"]), (3, [b"d", b"e"])]
    assert buf.unsent == 0 and buf.unsent_since is None
    buf.persisted(5)
    assert buf.held == 0
    buf.persisted(3)  # an old confirmation changes nothing
    assert buf.base == 5


def test_log_buffer_take_respects_the_byte_budget_but_always_sends_one_line() -> None:
    buf = LogBuffer()
    buf.append(False, [b"x" * 100, b"y" * 100, b"z"], 1, now=0.0)
    _, segs = buf.take(10, 50, now=0.0)
    assert [s.lines for s in segs] == [[b"x" * 100]]
    _, segs = buf.take(10, 150, now=0.0)
    assert [s.lines for s in segs] == [[b"y" * 100, b"z"]]


def test_encoded_log_batch_parses_back_with_the_generated_classes() -> None:
    buf = LogBuffer()
    ts = 1_700_000_000_123_456_789
    long_line = ("ü" * 20000).encode()  # > 16 KiB: multi-byte length varints
    buf.append(False, [b"hello", b"", long_line], ts, now=0.0)
    buf.append(True, ["stderr ñ".encode()], ts + 1000, now=0.0)
    first, segs = buf.take(100, 1 << 22, now=0.0)
    ref = common_pb2.JobRef(job_id="0b7f3f0e-0000-4000-8000-000000000001", attempt=3)
    wire = encode_log_batch(ref, 300 + first, segs)
    msg = workers_pb2.WorkerMessage.FromString(wire)
    assert msg.WhichOneof("payload") == "logs"
    batch = msg.logs
    assert batch.ref == ref
    assert batch.first_line == 300
    assert not batch.entries
    assert [(g.is_stderr, list(g.lines)) for g in batch.segments] == [
        (False, ["hello", "", "ü" * 20000]),
        (True, ["stderr ñ"]),
    ]
    assert batch.segments[0].timestamp.ToNanoseconds() == ts
    assert batch.segments[1].timestamp.ToNanoseconds() == ts + 1000
    # The same bytes the generated classes would write.
    assert workers_pb2.WorkerMessage(logs=batch).SerializeToString() == wire
    assert serialize(wire) is wire
    assert serialize(msg) == wire


def test_fast_and_slow_encoding_paths_match_the_generated_classes() -> None:
    ref = common_pb2.JobRef(job_id="j", attempt=1)
    short = [b"", b"a", "ñ".encode() * 100, b"x" * 15999, b""]
    for is_stderr in (False, True):
        for lines in (short, [*short, b"y" * 16000]):  # the last one takes the slow path
            buf = LogBuffer()
            buf.append(is_stderr, list(lines), 123_456_789_000, now=0.0)
            first, segs = buf.take(100, 1 << 24, now=0.0)
            wire = encode_log_batch(ref, first, segs)
            expected = workers_pb2.WorkerMessage(
                logs=workers_pb2.LogBatch(
                    ref=ref,
                    segments=[
                        workers_pb2.LogSegment(
                            is_stderr=is_stderr, lines=[line.decode() for line in lines]
                        )
                    ],
                )
            )
            expected.logs.segments[0].timestamp.FromNanoseconds(123_456_789_000)
            assert wire == expected.SerializeToString()


def test_batch_of_serialized_messages_is_what_the_generated_classes_write() -> None:
    ref = common_pb2.JobRef(job_id="0b7f3f0e-0000-4000-8000-000000000001", attempt=2)
    buf = LogBuffer()
    buf.append(False, [b"x" * 300], 5_000, now=0.0)  # > 127 bytes: two-byte lengths
    first, segs = buf.take(10, 1 << 20, now=0.0)
    messages = [
        workers_pb2.WorkerMessage(started=workers_pb2.JobStarted(ref=ref, pid=7)),
        workers_pb2.WorkerMessage.FromString(encode_log_batch(ref, first, segs)),
        workers_pb2.WorkerMessage(result=workers_pb2.JobResult(ref=ref, total_lines=1)),
    ]
    wire = encode_batch(serialize(m) for m in messages)
    expected = workers_pb2.WorkerMessage(batch=workers_pb2.WorkerBatch(messages=messages))
    assert wire == expected.SerializeToString()
    assert list(workers_pb2.WorkerMessage.FromString(wire).batch.messages) == messages
