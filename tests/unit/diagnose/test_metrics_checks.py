"""The doctor's metrics source and checks against real HTTP endpoints on loopback: real
Prometheus exposition (prometheus_client, the library the platform serves with), and
the wrong things a --metrics-url can point at (nothing, a silent port, a 404, HTML,
another program's metrics). Nothing here may raise: each is a verdict."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from hodei.diagnose.cli import _metrics_urls
from hodei.diagnose.metrics_source import scrape
from hodei.diagnose.registry import CheckContext, Thresholds
from hodei.diagnose.runner import diagnose
from hodei.report.model import Status

Body = Callable[[], tuple[int, bytes]]


@pytest.fixture
def endpoint() -> Iterator[Callable[[Body], str]]:
    servers: list[ThreadingHTTPServer] = []

    def serve(body: Body) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code, payload = body()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/metrics"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def exposition(
    component: str,
    *,
    database_up: float = 1,
    waiting: float = 0,
    internal: float = 0,
    reconnects: float = 0,
    started_ago_s: float = 3600,
) -> bytes:
    """Real Prometheus text, written by prometheus_client as the platform writes it."""
    reg = CollectorRegistry()
    Gauge(
        "hodei_build_info", "build", ["version", "python_version", "component"], registry=reg
    ).labels("0.1.0", "3.11", component).set(1)
    if component == "server":
        Gauge("hodei_database_up", "db", registry=reg).set(database_up)
        Gauge("hodei_db_pool_requests_waiting", "w", ["pool"], registry=reg).labels("api").set(
            waiting
        )
        Gauge("hodei_db_pool_connections", "c", ["pool", "state"], registry=reg).labels(
            "api", "in_use"
        ).set(10)
        handled = Counter(
            "hodei_grpc_server_handled",
            "h",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=reg,
        )
        handled.labels("hodei.v1.JobExecutionService", "QueueJob", "OK").inc(50)
        if internal:
            handled.labels("hodei.v1.JobExecutionService", "GetJob", "INTERNAL").inc(internal)
    else:
        Counter("hodei_worker_reconnects", "r", registry=reg).inc(reconnects)
        Gauge("process_start_time_seconds", "start", registry=reg).set(time.time() - started_ago_s)
    return generate_latest(reg)


def context(*urls: str, **thresholds: float) -> CheckContext:
    return CheckContext(
        database_url=None,
        server_address=None,
        thresholds=Thresholds(**thresholds),  # type: ignore[arg-type]
        metrics_urls=list(urls),
    )


def checks(*urls: str, **thresholds: float) -> dict[str, tuple[Status, str, str]]:
    result = diagnose(
        None,
        None,
        metrics_urls=list(urls),
        only=["metrics"],
        thresholds=Thresholds(**thresholds),  # type: ignore[arg-type]
    )
    return {c.id: (c.status, c.finding, c.observed) for c in result.report.checks}


def test_a_healthy_server_and_worker_pass_every_metrics_check(
    endpoint: Callable[[Body], str],
) -> None:
    server = endpoint(lambda: (200, exposition("server")))
    worker = endpoint(lambda: (200, exposition("worker", reconnects=2)))
    seen = checks(server, worker)
    assert {k: v[0] for k, v in seen.items()} == {
        "metrics.endpoints": Status.PASS,
        "metrics.server_database": Status.PASS,
        "metrics.db_pools": Status.PASS,
        "metrics.grpc_errors": Status.PASS,
        "metrics.worker_reconnects": Status.PASS,
    }
    assert (
        "server at" in seen["metrics.endpoints"][2] and "worker at" in seen["metrics.endpoints"][2]
    )
    assert seen["metrics.grpc_errors"][2] == "0 of 50 call(s) ended INTERNAL, UNKNOWN or DATA_LOSS"


def test_without_metrics_urls_the_checks_are_skipped() -> None:
    seen = checks()
    assert {v[0] for v in seen.values()} == {Status.SKIP}
    assert seen["metrics.endpoints"][2] == "no --metrics-url"


def test_a_server_that_lost_its_database_is_a_fail(endpoint: Callable[[Body], str]) -> None:
    url = endpoint(lambda: (200, exposition("server", database_up=0)))
    status, finding, observed = checks(url)["metrics.server_database"]
    assert (status, finding) == (Status.FAIL, "SERVER_DATABASE_UNREACHABLE")
    assert observed == "1 of 1 server(s) report their database unreachable"


def test_a_pool_queue_seen_once_is_not_a_starved_pool(endpoint: Callable[[Body], str]) -> None:
    calls = iter(range(1000))

    def momentary() -> tuple[int, bytes]:
        return 200, exposition("server", waiting=4 if next(calls) == 0 else 0)

    url = endpoint(momentary)
    assert checks(url, pool_confirm_s=0.05)["metrics.db_pools"][0] == Status.PASS


def test_a_pool_queue_seen_twice_is_a_starved_pool(endpoint: Callable[[Body], str]) -> None:
    url = endpoint(lambda: (200, exposition("server", waiting=4)))
    status, finding, observed = checks(url, pool_confirm_s=0.05)["metrics.db_pools"]
    assert (status, finding) == (Status.WARN, "DB_POOL_STARVED")
    assert observed == "1 pool(s) with requests waiting for a connection"


def test_calls_that_ended_internal_are_named(endpoint: Callable[[Body], str]) -> None:
    url = endpoint(lambda: (200, exposition("server", internal=3)))
    status, finding, observed = checks(url)["metrics.grpc_errors"]
    assert (status, finding) == (Status.WARN, "GRPC_SERVER_FAULTS")
    assert observed.startswith("3 of 53 call(s)")


def test_a_worker_reconnecting_every_30_s_is_flapping_and_a_rare_one_is_not(
    endpoint: Callable[[Body], str],
) -> None:
    # The seed's `h2 protocol error` every 30 s: 120 reconnects in an hour.
    seed_like = endpoint(lambda: (200, exposition("worker", reconnects=120)))
    # Four server restarts over a month of uptime: no pattern.
    long_lived = endpoint(
        lambda: (200, exposition("worker", reconnects=4, started_ago_s=30 * 86400))
    )
    status, finding, observed = checks(seed_like, long_lived)["metrics.worker_reconnects"]
    assert (status, finding) == (Status.WARN, "WORKER_STREAM_FLAPPING")
    assert observed == "1 of 2 worker(s) keep losing their stream"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nothing_listening_is_unreachable_not_a_crash() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    got = scrape(url, 1.0)
    assert (got.finding, got.problem) == (
        "METRICS_UNREACHABLE",
        "connection refused (nothing listens there)",
    )
    status, finding, _ = checks(url)["metrics.endpoints"]
    assert (status, finding) == (Status.WARN, "METRICS_UNREACHABLE")


def test_a_port_that_accepts_and_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        start = time.monotonic()
        got = scrape(f"http://127.0.0.1:{silent.getsockname()[1]}/metrics", 0.3)
        assert time.monotonic() - start < 2.0
    assert got.finding == "METRICS_UNREACHABLE"
    assert "timed out" in got.problem or "no answer" in got.problem


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ((404, b"not found"), "HTTP 404 Not Found"),
        ((200, b"<html><body>hello</body></html>"), "not the Prometheus text format"),
        ((200, b"\xff\xfe\x00garbage"), "not the Prometheus text format"),
        (
            (200, b"# TYPE node_load1 gauge\nnode_load1 0.5\n"),
            "Prometheus metrics, but not Hodei's (no hodei_build_info; 1 series: node_load1)",
        ),
    ],
)
def test_an_endpoint_that_is_not_hodeis_says_what_answered(
    endpoint: Callable[[Body], str], reply: tuple[int, bytes], problem: str
) -> None:
    got = scrape(endpoint(lambda: reply), 1.0)
    assert got.finding == "METRICS_NOT_HODEI"
    assert got.problem.startswith(problem)


def test_metrics_urls_accept_host_port_and_refuse_other_schemes() -> None:
    assert _metrics_urls(["10.0.0.5:9464", "http://h:9465/metrics"]) == [
        "http://10.0.0.5:9464/metrics",
        "http://h:9465/metrics",
    ]
    with pytest.raises(ValueError, match="expected http://HOST:PORT/metrics"):
        _metrics_urls(["ftp://h/metrics"])


def test_the_context_scrapes_each_url_once_per_run(endpoint: Callable[[Body], str]) -> None:
    hits = []

    def counted() -> tuple[int, bytes]:
        hits.append(1)
        return 200, exposition("server")

    from hodei.diagnose.checks_metrics import scrapes

    ctx = context(endpoint(counted))
    scrapes(ctx)
    scrapes(ctx)
    assert len(hits) == 1


def test_a_grpc_port_given_as_metrics_url_is_named_not_dumped() -> None:
    # An easy mistake: 50051 instead of 9464. A real gRPC server answers HTTP/1 with
    # HTTP/2 frames; the verdict says so in words, never with the raw bytes.
    from concurrent import futures

    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        got = scrape(f"http://127.0.0.1:{port}/metrics", 2.0)
        seen = checks(f"http://127.0.0.1:{port}/metrics")
    finally:
        server.stop(None)
    assert got.finding == "METRICS_NOT_HODEI", got.problem
    assert got.problem.startswith("not an HTTP/1 server"), got.problem
    assert all(c.isprintable() for c in got.problem)
    assert seen["metrics.endpoints"][:2] == (Status.WARN, "METRICS_NOT_HODEI")
    # The other metrics checks have nothing to read: skipped, not "could not run".
    assert {v[0] for k, v in seen.items() if k != "metrics.endpoints"} == {Status.SKIP}


@pytest.mark.parametrize("bad", ["not a url", "http://h:port/metrics", "http:///metrics"])
def test_a_malformed_metrics_url_is_refused_up_front(bad: str) -> None:
    with pytest.raises(ValueError, match="expected http://HOST:PORT/metrics"):
        _metrics_urls([bad])


def test_a_server_without_its_database_is_not_also_a_starved_pool(
    endpoint: Callable[[Body], str],
) -> None:
    url = endpoint(lambda: (200, exposition("server", database_up=0, waiting=7)))
    seen = checks(url, pool_confirm_s=0.05)
    assert seen["metrics.server_database"][:2] == (Status.FAIL, "SERVER_DATABASE_UNREACHABLE")
    assert seen["metrics.db_pools"][0] == Status.SKIP
