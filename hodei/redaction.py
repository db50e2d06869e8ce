"""Passwords and secret env values never reach a report, a terminal line, a log line
or a debug command.

`redact(url)` masks the password of a connection URL (and `password=` in a key/value
DSN or query string); `redact_text(text)` does the same for every URL inside a text,
e.g. a log line or an exception message quoted as evidence. `masked_env(names)` is
how a job's secret env is shown (names kept, values `***`), and `SecretMask` replaces
a job's secret values in its output lines (the worker, before sending them). The one
copy: the CLI (`hodei up`, `hodei db migrate`), the server, the worker, the doctor,
the reports and the harness all use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_MASK_BYTES = MASK.encode()
#: Secret values shorter than this (in UTF-8 bytes) are not masked in job output:
#: replacing every "a" or "42" would mangle the output and tell little anyway.
MIN_MASKED_SECRET_BYTES = 4

_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")
_KV_PASSWORD_RE = re.compile(r"(?i)\b(password|passwd|pwd)=([^\s&;'\"]+)")


def redact(url: str | None) -> str:
    """The URL with its password (if any) replaced by ***; '' for None."""
    if not url:
        return ""
    if "://" not in url:
        return _KV_PASSWORD_RE.sub(lambda m: f"{m.group(1)}={MASK}", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return _KV_PASSWORD_RE.sub(lambda m: f"{m.group(1)}={MASK}", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            user, _, password = userinfo.partition(":")
            if password:
                userinfo = f"{user}:{MASK}"
        netloc = f"{userinfo}@{hostport}"
    query = _KV_PASSWORD_RE.sub(lambda m: f"{m.group(1)}={MASK}", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Every URL and password=... inside `text`, redacted."""
    if not text:
        return text
    out = _URL_RE.sub(lambda m: redact(m.group(0)), text)
    return _KV_PASSWORD_RE.sub(lambda m: f"{m.group(1)}={MASK}", out)


def masked_env(names: Iterable[str]) -> dict[str, str]:
    """A secret env as shown anywhere: each name, with `***` for its value."""
    return dict.fromkeys(names, MASK)


class SecretMask:
    """Replaces each verbatim occurrence of a job's secret values in its output lines
    (UTF-8 bytes, one line at a time) with `***`.

    A value is found inside one line: a secret containing a newline is masked line
    by line (each of its lines of at least MIN_MASKED_SECRET_BYTES bytes), and one
    cut by the worker's line length cap is not found across the cut.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[str]) -> None:
        pieces = {
            piece.encode()
            for value in values
            for piece in value.splitlines()
            if len(piece.encode()) >= MIN_MASKED_SECRET_BYTES
        }
        # Longest first: a secret that contains another is masked whole.
        self._values = sorted(pieces, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._values)

    def lines(self, lines: list[bytes]) -> list[bytes]:
        if not self._values:
            return lines
        # One search per value over the whole chunk first (no value holds a newline,
        # so a hit is inside one line): output without a secret is not copied.
        joined = b"\n".join(lines)
        values = [value for value in self._values if value in joined]
        if not values:
            return lines
        out = []
        for line in lines:
            for value in values:
                if value in line:
                    line = line.replace(value, _MASK_BYTES)
            out.append(line)
        return out
