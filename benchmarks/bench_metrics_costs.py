"""The unit costs behind metrics' overhead (issue 15): a script that prints figures.

    .venv/bin/python benchmarks/bench_metrics_costs.py [--calls 2000] [--rounds 10]

1. a gRPC call through the CallMetrics interceptor against the same call without it:
   a real grpc.aio server and client in this process on 127.0.0.1 (health Check, the
   cheapest call there is, so the interceptor's share is as large as it gets), blocks of
   --calls calls alternating with and without, CPU time of the process per call;
2. one scrape of a server's registry (generate_latest) holding the families a busy
   server has (12 methods x 3 codes), the time the HTTP thread holds the interpreter;
3. the services' per-job calls (submitted, assigned, finished, logs_ingested).
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(interceptor(args.calls, args.rounds))
    scrape()
    per_job()
    return 0


if __name__ == "__main__":
    sys.exit(main())
