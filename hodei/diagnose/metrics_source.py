"""Reading a Hodei process's Prometheus endpoint (`--metrics-url`), for the metrics checks.

A scrape never raises: a refused connection, a timeout, an HTTP error, a body that is
not the Prometheus text format or an endpoint that is not Hodei's each come back as a
`Scrape` with `problem` set and a `finding` naming which it was, so the doctor says
what it met instead of crashing on a wrong URL."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

#: At most this much of a body is read: a wrong URL may point at anything.
MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Scrape:
    url: str
    samples: list[Sample] = field(default_factory=list)
    problem: str = ""  # why nothing usable was read ("" when the scrape worked)
    finding: str = ""  # METRICS_UNREACHABLE or METRICS_NOT_HODEI when problem is set
    taken_at: float = 0.0  # unix time of the scrape

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def component(self) -> str:
        """'server' or 'worker' (hodei_build_info's label), '' if unknown."""
        info = self.first("hodei_build_info")
        return info.labels.get("component", "") if info else ""

    @property
    def version(self) -> str:
        info = self.first("hodei_build_info")
        return info.labels.get("version", "") if info else ""

    def named(self, name: str, **labels: str) -> Iterator[Sample]:
        for s in self.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                yield s

    def first(self, name: str, **labels: str) -> Sample | None:
        return next(self.named(name, **labels), None)

    def value(self, name: str, default: float | None = None, **labels: str) -> float | None:
        found = self.first(name, **labels)
        return found.value if found else default

    def total(self, name: str, **labels: str) -> float:
        return sum(s.value for s in self.named(name, **labels))


def scrape(url: str, timeout_s: float) -> Scrape:
    """GET `url` and parse it; every failure is a Scrape with its problem."""
    taken_at = time.time()
    request = urllib.request.Request(url, headers={"Accept": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            body = reply.read(MAX_BODY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        return Scrape(url, problem=f"HTTP {exc.code} {exc.reason}", finding="METRICS_NOT_HODEI")
    except urllib.error.URLError as exc:
        return Scrape(url, problem=_printable(_reason(exc.reason)), finding="METRICS_UNREACHABLE")
    except TimeoutError:
        return Scrape(
            url, problem=f"no answer within {timeout_s:g} s", finding="METRICS_UNREACHABLE"
        )
    except http.client.HTTPException as exc:
        # Not HTTP/1 on the other end: a gRPC port (HTTP/2 frames), a database...
        return Scrape(
            url,
            problem=f"not an HTTP/1 server ({type(exc).__name__}: the gRPC port?)",
            finding="METRICS_NOT_HODEI",
        )
    except (OSError, ValueError) as exc:  # reset mid-body, a malformed URL
        return Scrape(url, problem=_printable(_reason(exc)), finding="METRICS_UNREACHABLE")
    if len(body) > MAX_BODY_BYTES:
        return Scrape(url, problem="answer over 16 MiB", finding="METRICS_NOT_HODEI")
    return parse(url, body, taken_at)


def parse(url: str, body: bytes, taken_at: float = 0.0) -> Scrape:
    """The Prometheus text format in `body`; a body that is not is a problem, not an error."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = body.decode("utf-8")
        samples = [
            Sample(s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
    except (UnicodeDecodeError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Scrape(
            url,
            problem=f"not the Prometheus text format ({_printable(first, 120)})",
            finding="METRICS_NOT_HODEI",
        )
    scraped = Scrape(url, samples, taken_at=taken_at)
    if scraped.first("hodei_build_info") is None:
        names = sorted({s.name for s in samples})
        shown = ", ".join(names[:3]) + ("…" if len(names) > 3 else "")
        scraped.problem = (
            f"Prometheus metrics, but not Hodei's (no hodei_build_info; {len(names)} "
            f"series{': ' + shown if shown else ''})"
        )
        scraped.finding = "METRICS_NOT_HODEI"
    return scraped


def _printable(text: str, limit: int = 160) -> str:
    """What an unknown peer sent, safe on a terminal: control bytes shown as '?'."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean[:limit] + ("…" if len(clean) > limit else "")


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "no answer (timed out)"
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
