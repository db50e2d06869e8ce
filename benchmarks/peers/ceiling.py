"""The no-queue ceiling: one asyncio process spawning `true` at a fixed concurrency,
the way procrastinate's task does (asyncio.create_subprocess_exec, then wait), with
no database, no queue and no network. What a queue adds shows as the distance to it.

    .venv/bin/python benchmarks/peers/ceiling.py [--jobs 2000] [--concurrency 8]

Prints one JSON object: {"jobs_per_s": ..., "seconds": ..., "jobs": ..., "concurrency": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any


async def spawn_true(jobs: int, concurrency: int) -> dict[str, Any]:
    remaining = iter(range(jobs))

    async def runner() -> None:
        for _ in remaining:  # one shared iterator: each job is taken once
            process = await asyncio.create_subprocess_exec("true")
            code = await process.wait()
            if code != 0:
                raise RuntimeError(f"true exited {code}")

    t0 = time.perf_counter()
    await asyncio.gather(*(runner() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    return {
        "jobs_per_s": jobs / seconds,
        "seconds": seconds,
        "jobs": jobs,
        "concurrency": concurrency,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(spawn_true(args.jobs, args.concurrency))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
