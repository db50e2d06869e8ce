"""Workers on demand: from a job queued with no worker at all to a provisioned worker
running it. A script that prints figures (not a test).

    .venv/bin/python benchmarks/bench_provisioning.py [--runs 5] [--provider process|docker]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--image hodei/hodei:dev]

An in-process server (authentication on: each worker gets its single-use token) on a
fresh database, with a providers file of one provider (idle_ttl 1 s, scaler interval
0.2 s). Each run queues one `true` job while no worker exists, waits for it to
SUCCEED, then for its worker to be scaled down, so that the next run starts from zero
again. Printed per run and as medians, from the database's own timestamps:
queued -> provider returned (the scaler's round, the token, the process or container
started), queued -> worker registered, queued -> job RUNNING on it.
The docker provider needs a Docker daemon and the image (.ci/containers-prepare.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg.rows import dict_row

from harness.waits import wait_for_async
from hodei.client import HodeiClient
from hodei.db.connector import PsycopgTx
from hodei.db.databases import create_database, drop_database
from hodei.domain.auth import Role
from hodei.server.app import ServerApp
from hodei.server.tokens import create_token
from hodei.settings import Settings

_TIMES = """
SELECT extract(epoch FROM p.started_at - j.created_at)::float8 AS provider_s,
       extract(epoch FROM p.registered_at - j.created_at)::float8 AS registered_s,
       extract(epoch FROM j.started_at - j.created_at)::float8 AS running_s
FROM jobs j JOIN provisioned_workers p ON p.job_id = j.id WHERE j.id = %s
"""


async def one_row(url: str, sql: str, *params: Any) -> dict[str, Any] | None:
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        return await (await conn.execute(sql, params)).fetchone()


async def run(args: argparse.Namespace) -> None:
    name = f"hodei_bench_prov_{uuid.uuid4().hex[:8]}"
    url = create_database(args.database_url, name)
    entry: dict[str, Any] = {
        "name": f"bench-{args.provider}",
        "type": args.provider,
        "max_workers": 1,
        "idle_ttl": 1,
    }
    if args.provider == "docker":
        entry["image"] = args.image
    folder = Path(tempfile.mkdtemp(prefix="hodei-bench-prov-"))
    providers = folder / "providers.yaml"
    providers.write_text(yaml.safe_dump({"providers": [entry]}))
    settings = Settings.model_validate(
        {
            "database": {"url": url},
            "server": {"host": "127.0.0.1", "port": 0},
            "metrics": {"enabled": False},
            "scaling": {"providers_file": str(providers), "interval": 0.2},
        }
    )
    app = ServerApp(settings)
    await app.start()
    try:
        async with await psycopg.AsyncConnection.connect(
            url, autocommit=True, row_factory=dict_row
        ) as conn:
            _, token = await create_token(PsycopgTx(conn), "bench-admin", Role.ADMIN)
        rows: list[dict[str, float]] = []
        async with HodeiClient(app.address, token=token) as client:
            for index in range(args.runs):
                job = await client.queue_job(["true"])
                await wait_for_async(
                    f"job {job.id} to succeed",
                    lambda: client.get_job(job.id),  # noqa: B023 (awaited at once)
                    lambda j: j.is_final,
                    timeout_s=120,
                )
                times = await one_row(url, _TIMES, uuid.UUID(job.id))
                assert times is not None, "the job ran on no provisioned worker"
                rows.append(times)
                print(
                    f"run {index + 1}: provider returned {times['provider_s']:.2f} s, "
                    f"registered {times['registered_s']:.2f} s, job RUNNING "
                    f"{times['running_s']:.2f} s after it was queued",
                    flush=True,
                )
                await wait_for_async(
                    "the worker to be scaled down",
                    lambda: one_row(
                        url,
                        "SELECT count(*) AS n FROM provisioned_workers "
                        "WHERE state IN ('PROVISIONING', 'RUNNING')",
                    ),
                    lambda r: r is not None and r["n"] == 0,
                    timeout_s=120,
                )
        for key, label in (
            ("provider_s", "queued -> provider returned"),
            ("registered_s", "queued -> worker registered"),
            ("running_s", "queued -> job RUNNING"),
        ):
            values = [r[key] for r in rows]
            print(
                f"{args.provider}: {label}: median {statistics.median(values):.2f} s "
                f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} runs)"
            )
    finally:
        await app.stop(grace=2.0)
        drop_database(args.database_url, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--provider", choices=["process", "docker"], default="process")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--image", default="hodei/hodei:dev")
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
