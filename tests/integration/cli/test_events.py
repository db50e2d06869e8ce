"""`hodei events tail` as a real subprocess against a real NATS JetStream (a stream of
the test's own on the shared NATS), fed by a real server's outbox relay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harness.waits import wait_for_async, wait_until_async
from hodei.api.v1 import jobs_pb2
from tests.integration.cli_process import (
    assert_one_line_error,
    closed_port,
    finish,
    hodei,
    start_cli,
)
from tests.integration.nats_events import outbox, unpublished
from tests.integration.wire import Stubs

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[Any]]


def _flags(broker: dict[str, Any]) -> list[str]:
    return [
        "--nats-url",
        broker["nats_url"],
        "--nats-stream",
        broker["stream"],
        "--nats-subject-prefix",
        broker["subject_prefix"],
    ]


async def _two_jobs_one_cancelled(
    start_server: StartServer, stubs_for: Callable[[str], Stubs], db_url: str, broker: Any
) -> tuple[Stubs, list[dict[str, Any]]]:
    app = await start_server(dispatcher={"enabled": False}, broker=broker)
    stubs = stubs_for(app.address)
    first = await stubs.queue(["true"])
    await stubs.queue(["true"])
    await stubs.jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=first.id))
    await wait_until_async("the 3 events published", lambda: unpublished(db_url) == 0, 15)
    rows = outbox(db_url)
    assert len(rows) == 3
    return stubs, rows


async def test_tail_prints_one_line_per_event(
    shared_nats: dict[str, Any],
    start_server: StartServer,
    stubs_for: Callable[[str], Stubs],
    db_url: str,
) -> None:
    _, rows = await _two_jobs_one_cancelled(start_server, stubs_for, db_url, shared_nats)
    prefix = shared_nats["subject_prefix"]
    result = await hodei("events", "tail", "--all", "--count", "3", *_flags(shared_nats))
    assert result.returncode == 0, str(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 3, str(result)
    subjects = [f"{prefix}.job.created", f"{prefix}.job.created", f"{prefix}.job.cancelled"]
    types = ["JobCreated", "JobCreated", "JobCancelled"]
    for line, row, subject, kind in zip(lines, rows, subjects, types, strict=True):
        assert f"  {subject}  event={row['event_id']}  job=" in line, line
        assert line.endswith(f"  {kind}"), line

    # --json, and --subject (twice: filtered by the CLI) keeps only what it names.
    result = await hodei(
        "events",
        "tail",
        "--all",
        "--json",
        "--count",
        "1",
        "--subject",
        f"{prefix}.job.cancelled",
        "--subject",
        f"{prefix}.worker.>",
        *_flags(shared_nats),
    )
    assert result.returncode == 0, str(result)
    record = json.loads(result.stdout)
    assert record["subject"] == f"{prefix}.job.cancelled"
    assert record["event_id"] == rows[2]["event_id"] and record["type"] == "JobCancelled"
    assert record["aggregate_type"] == "job" and record["time"]


async def test_tail_follows_new_events(
    shared_nats: dict[str, Any],
    start_server: StartServer,
    stubs_for: Callable[[str], Stubs],
    db_url: str,
) -> None:
    stubs, rows = await _two_jobs_one_cancelled(start_server, stubs_for, db_url, shared_nats)
    argv = ["events", "tail", "--count", "1", *_flags(shared_nats)]
    proc = await start_cli(*argv)
    assert proc.stdout is not None
    stdout = proc.stdout

    async def a_line_after_a_new_job() -> bytes:
        # The CLI prints only what comes after it subscribed: a job per poll until
        # one of them shows up.
        await stubs.queue(["true"])
        return await asyncio.wait_for(stdout.readline(), 0.3)

    line = await wait_for_async("tail to print a new event", a_line_after_a_new_job, bool, 15)
    result = await finish(proc, argv, 10)
    assert result.returncode == 0, str(result)
    text = line.decode()
    assert f"{shared_nats['subject_prefix']}.job.created  event=" in text
    assert not any(f"event={r['event_id']} " in text for r in rows)  # not the old ones


async def test_tail_says_in_one_line_when_nats_cannot_be_reached() -> None:
    url = f"nats://127.0.0.1:{closed_port()}"
    result = await hodei("events", "tail", "--nats-url", url, seconds=20)
    assert_one_line_error(result, 3, f"NATS unreachable at {url}")
    result = await hodei("events", "tail")
    assert_one_line_error(result, 2, "NATS is not configured")
