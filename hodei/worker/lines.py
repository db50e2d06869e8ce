"""Turning a child's raw output into lines, and holding those lines until the
server has persisted them.

Lines are kept as UTF-8 `bytes` from the pipe to the wire: the process output is
validated (invalid bytes replaced) once per chunk, never decoded line by line,
which is what lets one job stream hundreds of thousands of lines per second.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

#: Longest line kept whole; a longer one is split into pieces of at most this size.
DEFAULT_MAX_LINE_BYTES = 1024 * 1024

_REPLACEMENT = "\ufffd".encode()


def clean_utf8(data: bytes) -> bytes:
    """`data` as valid UTF-8 without NUL (PostgreSQL text refuses NUL), replacing bad bytes."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        data = data.decode("utf-8", errors="replace").encode("utf-8")
    if b"\x00" in data:
        data = data.replace(b"\x00", _REPLACEMENT)
    return data


def _split_point(data: bytes, limit: int) -> int:
    """Largest cut <= limit that does not fall inside a UTF-8 sequence."""
    cut = limit
    # Back off over continuation bytes (10xxxxxx), at most 3 of them.
    while cut > limit - 4 and cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > 0 else limit


class LineSplitter:
    """Splits a byte stream into lines (without their `\\n`), capped at `max_line_bytes`."""

    __slots__ = ("_max", "_partial")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 4:
            raise ValueError("max_line_bytes must be at least 4")
        self._max = max_line_bytes
        self._partial = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._partial + chunk if self._partial else chunk
        cut = data.rfind(b"\n")
        lines: list[bytes]
        if cut < 0:
            lines = []
            rest = data
        else:
            complete = data[:cut]
            rest = data[cut + 1 :]
            lines = clean_utf8(complete).split(b"\n")
            if len(complete) > self._max:
                lines = self._cap(lines)
        while len(rest) > self._max:
            at = _split_point(rest, self._max)
            lines.append(clean_utf8(rest[:at]))
            rest = rest[at:]
        self._partial = rest
        return lines

    def finish(self) -> list[bytes]:
        """The last line when the output does not end with a newline."""
        rest, self._partial = self._partial, b""
        return [clean_utf8(rest)] if rest else []

    def _cap(self, lines: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for line in lines:
            while len(line) > self._max:
                at = _split_point(line, self._max)
                out.append(line[:at])
                line = line[at:]
            out.append(line)
        return out


@dataclass(slots=True)
class Segment:
    """Consecutive lines of one stream read at one instant."""

    start: int  # attempt-wide index of lines[0]
    is_stderr: bool
    ts_ns: int
    lines: list[bytes]

    @property
    def end(self) -> int:
        return self.start + len(self.lines)


class LogBuffer:
    """The lines of one attempt that the server has not confirmed yet.

    Indexes are attempt-wide and 0-based (`LogBatch.first_line`). `base` is the
    first line still held (everything below is persisted), `sent` the next line
    to send on the current stream. After a reconnect `rewind()` sends again from
    `base`; the server deduplicates by index.
    """

    def __init__(self) -> None:
        self._segments: deque[Segment] = deque()
        self.base = 0
        self.sent = 0
        self.total = 0
        #: bytes of line text held (not yet persisted)
        self.held_bytes = 0
        #: monotonic time at which the oldest unsent line arrived (None: nothing unsent)
        self.unsent_since: float | None = None

    @property
    def unsent(self) -> int:
        return self.total - self.sent

    @property
    def held(self) -> int:
        return self.total - self.base

    def append(self, is_stderr: bool, lines: list[bytes], ts_ns: int, now: float) -> None:
        if not lines:
            return
        self._segments.append(Segment(self.total, is_stderr, ts_ns, lines))
        self.total += len(lines)
        self.held_bytes += sum(map(len, lines))
        if self.unsent_since is None:
            self.unsent_since = now

    def take(self, max_lines: int, max_bytes: int, now: float) -> tuple[int, list[Segment]]:
        """Up to `max_lines` unsent lines (and about `max_bytes`, at least one line),
        as segments; marks them sent. Returns (first_line, segments)."""
        first = self.sent
        out: list[Segment] = []
        budget_lines = max_lines
        budget_bytes = max_bytes
        for seg in self._segments:
            if seg.end <= self.sent:
                continue
            if budget_lines <= 0 or budget_bytes <= 0:
                break
            lo = self.sent - seg.start
            hi = min(len(seg.lines), lo + budget_lines)
            piece = seg.lines if (lo == 0 and hi == len(seg.lines)) else seg.lines[lo:hi]
            size = sum(map(len, piece)) + 8 * len(piece)
            if size > budget_bytes:
                # Rare (very long lines): stop where the byte budget runs out.
                size = 0
                for i in range(lo, hi):
                    line_size = len(seg.lines[i]) + 8
                    if size + line_size > budget_bytes and (i > lo or out):
                        hi = i
                        break
                    size += line_size
                piece = seg.lines[lo:hi]
            if hi <= lo:
                break
            out.append(Segment(seg.start + lo, seg.is_stderr, seg.ts_ns, piece))
            self.sent += hi - lo
            budget_lines -= hi - lo
            budget_bytes -= size
        self.unsent_since = now if self.unsent > 0 else None
        return first, out

    def persisted(self, next_line: int) -> None:
        """The server holds every line below `next_line`: forget them."""
        next_line = min(next_line, self.total)
        if next_line <= self.base:
            return
        while self._segments and self._segments[0].end <= next_line:
            self.held_bytes -= sum(map(len, self._segments.popleft().lines))
        if self._segments and self._segments[0].start < next_line:
            seg = self._segments[0]
            drop = next_line - seg.start
            self.held_bytes -= sum(map(len, seg.lines[:drop]))
            self._segments[0] = Segment(next_line, seg.is_stderr, seg.ts_ns, seg.lines[drop:])
        self.base = next_line
        if self.sent < self.base:
            self.sent = self.base

    def rewind(self, now: float) -> None:
        """A new stream: everything not persisted must be sent again."""
        self.sent = self.base
        self.unsent_since = now if self.unsent > 0 else None
