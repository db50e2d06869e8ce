"""Benchmark: log lines per second through the worker alone (no server, no database).

A real child process prints N lines; the worker agent reads them, buffers them
and encodes LogBatch messages exactly as it writes them on the stream; the
benchmark plays the server by confirming each batch (Persisted). Prints lines/s.

    .venv/bin/python scripts/bench_worker_logs.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from hodei.api.v1 import common_pb2, workers_pb2
from hodei.settings import Settings
from hodei.worker.agent import WorkerAgent


async def bench(lines: int, command: list[str]) -> None:
    agent = WorkerAgent(Settings(), dict(os.environ))
    agent.worker_id = "bench"
    agent.connected = True
    ref = common_pb2.JobRef(job_id="00000000-0000-4000-8000-000000000001", attempt=1)
    t0 = time.perf_counter()
    agent.handle(workers_pb2.ServerMessage(run=workers_pb2.RunJob(ref=ref, command=command)))
    received = 0
    batches = 0
    wire_bytes = 0
    while True:
        message = await agent.next_outgoing()
        if isinstance(message, bytes):
            wire_bytes += len(message)
            # Count lines the way the server would see them: parse the bytes.
            batch = workers_pb2.WorkerMessage.FromString(message).logs
            received += len(batch.entries)
            batches += 1
            agent.handle(
                workers_pb2.ServerMessage(
                    persisted=workers_pb2.Persisted(
                        ref=ref, next_line=batch.first_line + len(batch.entries)
                    )
                )
            )
        elif message.WhichOneof("payload") == "result":
            break
    elapsed = time.perf_counter() - t0
    assert received == lines, (received, lines)
    print(
        f"{received:,} lines in {elapsed:.2f} s: {received / elapsed:,.0f} lines/s "
        f"({batches} batches, {wire_bytes / 1e6:.1f} MB on the wire)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    code = (
        "import sys\n"
        f"n = {args.lines}\n"
        "w = sys.stdout.write\n"
        "for i in range(0, n, 1000):\n"
        "    end = min(i + 1000, n)\n"
        "    w(''.join(f'line {j} of the benchmark output\\n'\n"
        "              for j in range(i, end)))\n"
    )
    asyncio.run(bench(args.lines, [sys.executable, "-c", code]))


if __name__ == "__main__":
    main()
