"""The unit costs behind metrics' overhead (issue 15): a script that prints figures.

    .venv/bin/python benchmarks/bench_metrics_costs.py [--calls 2000] [--rounds 10]

1. a gRPC call through the CallMetrics interceptor against the same call without it:
   a real grpc.aio server and client in this process on 127.0.0.1 (health Check, the
   cheapest call there is, so the interceptor's share is as large as it gets), blocks of
   --calls calls alternating with and without, CPU time of the process per call;
2. one scrape of a server's registry (generate_latest) holding the families a busy
   server has (12 methods x 3 codes), the time the HTTP thread holds the interpreter;
3. the services' per-job calls (submitted, assigned, finished, logs_ingested);
4. the fixed cost: an idle platform (bench_platform_processes.Platform: a server and 2
   workers) over --idle seconds, metrics on and every endpoint scraped every second,
   against metrics off: the CPU the endpoints, the scrapes and the refresh loop take.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import timeit
from datetime import UTC, datetime, timedelta

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import generate_latest

from hodei.metrics import ServerMetrics
from hodei.server.api.call_metrics import CallMetrics


async def cpu_per_call(interceptors: list[grpc.aio.ServerInterceptor], calls: int) -> float:
    server = grpc.aio.server(interceptors=interceptors)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest()
            for _ in range(50):
                await stub.Check(request)
            began = time.process_time()
            for _ in range(calls):
                await stub.Check(request)
            return (time.process_time() - began) / calls
    finally:
        await server.stop(0)


async def interceptor(calls: int, rounds: int) -> None:
    with_, without = [], []
    for _ in range(rounds):
        with_.append(await cpu_per_call([CallMetrics(ServerMetrics())], calls))
        without.append(await cpu_per_call([], calls))
    on, off = statistics.median(with_), statistics.median(without)
    print(f"[1] health Check, {rounds} x {calls} calls each way, process CPU per call (median):")
    print(f"    with CallMetrics {on * 1e6:7.1f} us, without {off * 1e6:7.1f} us,")
    print(f"    difference {(on - off) * 1e6:+.1f} us per call ({(on / off - 1) * 100:+.1f} %)")


def scrape() -> None:
    metrics = ServerMetrics()
    methods = ["QueueJob", "QueueJobs", "GetJob", "ListJobs", "CancelJob", "SubscribeLogs"]
    methods += ["GetLogs", "Register", "WorkerStream", "ListWorkers", "ServerInfo", "Check"]
    for method in methods:
        for code in ("OK", "INVALID_ARGUMENT", "NOT_FOUND"):
            metrics.grpc_handled.labels("hodei.api.v1.JobExecutionService", method, code).inc()
        metrics.grpc_seconds.labels("hodei.api.v1.JobExecutionService", method).observe(0.01)
    size = len(generate_latest(metrics.registry))
    seconds = timeit.timeit(lambda: generate_latest(metrics.registry), number=200) / 200
    print(f"[2] one scrape of a busy server's registry: {seconds * 1e3:.2f} ms ({size:,} bytes)")


def per_job() -> None:
    metrics = ServerMetrics()
    now = datetime.now(UTC)
    earlier = now - timedelta(seconds=1)

    def job() -> None:
        metrics.submitted()
        metrics.assigned([(earlier, now)])
        metrics.finished("SUCCEEDED", earlier, now)
        metrics.logs_ingested(1, 10)

    seconds = timeit.timeit(job, number=20000) / 20000
    print(f"[3] the services' metric calls for one job: {seconds * 1e6:.1f} us")


async def idle_cpu(metrics: bool, seconds: float) -> float:
    """CPU seconds the server and its workers use over `seconds` of idling."""
    import shutil
    import tempfile
    import urllib.request
    from pathlib import Path

    from bench_platform_processes import Platform

    from harness.processes import cpu_seconds
    from hodei.client import HodeiClient

    def fetch(url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return bytes(reply.read())

    workdir = Path(tempfile.mkdtemp(prefix="hodei-bench-"))
    platform = Platform(workdir, 2, 16, metrics=metrics)
    try:
        await asyncio.to_thread(platform.start)  # it runs its own event loop for tokens
        async with HodeiClient(platform.address, deadline=30, token=platform.token) as client:
            await platform.wait_ready(client)
        await asyncio.sleep(2)  # the start-up's own work settles
        pids = [p.pid for p in [platform.server, *platform.worker_procs] if p is not None]
        began = sum(cpu_seconds(pid) for pid in pids)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for port in platform.metrics_ports:
                await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
            await asyncio.sleep(1)
        return sum(cpu_seconds(pid) for pid in pids) - began
    finally:
        platform.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def fixed_cost(seconds: float) -> None:
    on = await idle_cpu(True, seconds)
    off = await idle_cpu(False, seconds)
    print(f"[4] an idle server + 2 workers over {seconds:g} s, CPU of the three processes:")
    print(f"    metrics on, scraped every second: {on * 1e3:.0f} ms; off: {off * 1e3:.0f} ms;")
    print(f"    difference {(on - off) / seconds * 1e3:+.1f} ms of CPU per second")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--idle", type=float, default=30.0, metavar="SECONDS")
    args = parser.parse_args()
    asyncio.run(interceptor(args.calls, args.rounds))
    scrape()
    per_job()
    asyncio.run(fixed_cost(args.idle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
