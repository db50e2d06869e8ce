"""Passwords never reach a report, a terminal line or a debug command.

`redact(url)` masks the password of a connection URL (and `password=` in a key/value
DSN or query string); `redact_text(text)` does the same for every URL inside a text,
e.g. a log line or an exception message quoted as evidence. The one copy: the CLI
(`hodei up`, `hodei db migrate`), the doctor, the reports and the harness all use it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

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
