"""hodei-diagnose and the events on NATS JetStream (hodei/diagnose/checks_nats.py),
against real deployments whose relay publishes to a real NATS: the NATS of the test
killed (NATS_UNREACHABLE, with the outbox backlog it causes), a durable consumer that
reads nothing (NATS_CONSUMER_LAG), the stream missing, rows dead-lettered. The real
CLI in a subprocess, asserting check ids, finding codes and exit codes."""

from __future__ import annotations

from typing import Any

import nats
import psycopg
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from harness.nats_server import NatsServer
from harness.waits import wait_until_async
from tests.integration.diagnose.deployments import no_crash, queue_job, targets
from tests.integration.nats_events import unique_broker, unpublished

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _nats_flags(broker: dict[str, Any]) -> list[str]:
    return ["--nats-url", broker["nats_url"], "--nats-stream", broker["stream"]]


async def _published_jobs(app: Any, db_url: str, token: str, n: int, *, wait: bool = True) -> None:
    for _ in range(n):
        await queue_job(app.address, ["true"], token)
    if wait:
        await wait_until_async("the events published", lambda: unpublished(db_url) == 0, 15)


async def test_nats_unreachable_is_named_with_the_backlog_it_causes(
    own_nats: NatsServer,
    db_url: str,
    start_server: Any,
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    broker = unique_broker(own_nats.url)
    app = await start_server(dispatcher={"enabled": False}, broker=broker)
    await _published_jobs(app, db_url, diag_tokens["admin"], 1)
    own_nats.kill()
    await _published_jobs(app, db_url, diag_tokens["admin"], 3, wait=False)

    run = await run_diagnose(*targets(db_url, app.address), *_nats_flags(broker), "--only", "nats")
    no_crash(run)
    assert run.code == 2, (run.failing(), run.stdout, run.stderr)
    assert run.failing() == {"nats.reachable": "FAIL"}
    check = run.check("nats.reachable")
    assert check["finding"] == "NATS_UNREACHABLE"
    assert run.report["root_cause"].startswith(f"NATS unreachable at {own_nats.url}"), run.report[
        "root_cause"
    ]
    assert "3 outbox row(s) wait unpublished" in run.report["root_cause"]
    # What needs NATS is skipped, not failed twice.
    assert run.statuses()["nats.stream"] == "SKIP"


async def test_a_consumer_that_reads_nothing_is_named_with_its_lag(
    shared_nats: dict[str, Any],
    db_url: str,
    start_server: Any,
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server(dispatcher={"enabled": False}, broker=shared_nats)
    await _published_jobs(app, db_url, diag_tokens["admin"], 1)  # the stream exists now
    nc = await nats.connect(shared_nats["nats_url"])
    try:
        await nc.jetstream().add_consumer(
            shared_nats["stream"],
            ConsumerConfig(durable_name="billing", ack_policy=AckPolicy.EXPLICIT),
        )
    finally:
        await nc.close()
    await _published_jobs(app, db_url, diag_tokens["admin"], 5)

    run = await run_diagnose(
        *targets(db_url, app.address),
        *_nats_flags(shared_nats),
        "--nats-consumer",
        "billing,ghost",
        "--threshold",
        "nats_consumer_lag=3",
        "--only",
        "nats",
    )
    no_crash(run)
    assert run.code == 1, (run.failing(), run.stdout, run.stderr)
    assert run.failing() == {"nats.consumer_lag": "WARN"}
    check = run.check("nats.consumer_lag")
    assert check["finding"] == "NATS_CONSUMER_LAG"
    assert check["params"]["consumer"] == "billing" and check["params"]["pending"] == 6
    assert any("consumer ghost: not found" in e for e in check["evidence"]), check["evidence"]
    assert run.statuses()["nats.reachable"] == "PASS"
    assert run.statuses()["nats.stream"] == "PASS"


async def test_a_missing_stream_and_dead_letters_are_named(
    shared_nats: dict[str, Any],
    db_url: str,
    start_server: Any,
    run_diagnose: Any,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server(dispatcher={"enabled": False}, broker=shared_nats)
    await _published_jobs(app, db_url, diag_tokens["admin"], 2)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE outbox_events SET dead_at = now(), publish_attempts = 5, "
            "last_error = 'refused by JetStream: message size exceeds maximum allowed' "
            "WHERE id = (SELECT min(id) FROM outbox_events)"
        )
    broker = {**shared_nats, "stream": shared_nats["stream"] + "_GONE"}

    run = await run_diagnose(*targets(db_url, app.address), *_nats_flags(broker), "--only", "nats")
    no_crash(run)
    assert run.code == 2, (run.failing(), run.stdout, run.stderr)
    assert run.failing() == {"nats.stream": "FAIL", "nats.dead_letters": "WARN"}
    assert run.check("nats.stream")["finding"] == "NATS_STREAM_MISSING"
    dead = run.check("nats.dead_letters")
    assert dead["finding"] == "OUTBOX_DEAD_LETTERED" and dead["params"]["count"] == 1
    assert "message size exceeds maximum allowed" in dead["evidence"][0]
    assert run.report["root_cause"].startswith(f"NATS at {shared_nats['nats_url']} has no stream")


async def test_without_a_nats_url_the_nats_checks_are_skipped(
    db_url: str, start_server: Any, run_diagnose: Any
) -> None:
    app = await start_server(dispatcher={"enabled": False})
    run = await run_diagnose(*targets(db_url, app.address), "--only", "nats")
    no_crash(run)
    assert run.statuses() == {
        "nats.reachable": "SKIP",
        "nats.stream": "SKIP",
        "nats.consumer_lag": "SKIP",
        "nats.dead_letters": "SKIP",
    }
    assert run.code == 0
