"""The live launcher attaches to a deployment it does not own: it creates only jobs
labelled hodei.io/test=true, alters no existing row, and skips (with the reason) the
scenarios that would kill processes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.certs import TlsCerts
from harness.driver import Driver
from harness.launchers.base import Deployment, LaunchError, create_run_token
from harness.launchers.live import LiveLauncher
from harness.launchers.local import LocalLauncher, LocalOptions
from harness.waits import wait_for
from hodei.server.app import ServerApp
from tests.integration.harness.feature_runs import run_features

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    launcher = LocalLauncher(LocalOptions(workers=1, run_dir=tmp_path / "run"))
    try:
        yield launcher.start()
    finally:
        launcher.stop()


def _rows(url: str) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT id::text, state, attempts, updated_at, labels FROM jobs")
        return {r[0]: tuple(r[1:]) for r in rows.fetchall()}


def test_live_run_creates_only_test_jobs_and_skips_kills(
    deployment: Deployment, tmp_path: Path
) -> None:
    import grpc

    from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc
    from hodei.client.channel import token_interceptors

    # A job that is not the harness's (an operator's, with the run's admin token): it must
    # come out of the run untouched.
    async def queue_operator_job() -> str:
        async with grpc.aio.insecure_channel(
            deployment.server_address, interceptors=token_interceptors(deployment.token)
        ) as channel:
            stub = jobs_pb2_grpc.JobExecutionServiceStub(channel)
            reply = await stub.QueueJob(
                jobs_pb2.QueueJobRequest(
                    spec=jobs_pb2.JobSpec(command=["true"], name="operator-job")
                ),
                timeout=5,
            )
            return str(reply.job.id)

    own = asyncio.run(queue_operator_job())
    wait_for(
        "the operator's job to finish",
        lambda: _rows(deployment.database_url)[own][0],
        lambda s: s == "SUCCEEDED",
        timeout_s=15,
    )
    before = _rows(deployment.database_url)

    # The least role the live harness needs: a client token (by its variable, not argv).
    report = run_features(
        tmp_path / "reports",
        "-k",
        "layer or PENDING or killed",
        "--launcher",
        "live",
        "--database-url",
        deployment.database_url,
        "--server",
        deployment.server_address,
        env={"HODEI_E2E_TOKEN": create_run_token(deployment.database_url, "client")},
    )

    after = _rows(deployment.database_url)
    assert {k: after[k] for k in before} == before, "the live run altered existing jobs"
    new = {k: v for k, v in after.items() if k not in before}
    assert new, "the live run created no job"
    assert all(v[3].get("hodei.io/test") == "true" for v in new.values()), new
    by_name = {s["name"]: s for s in report["scenarios"]}
    killed = by_name["A worker killed mid-job: the job is retried and finishes"]
    assert killed["status"] == "SKIP" and "kills nothing" in killed["error"], killed
    assert by_name["A job runs from PENDING to SUCCEEDED"]["status"] == "PASS"
    assert report["target"]["mode"] == "live"


async def test_live_launcher_attaches_to_a_tls_deployment(
    start_server: Callable[..., Awaitable[ServerApp]], tls_certs: TlsCerts, db_url: str
) -> None:
    app = await start_server(tls=tls_certs.server(mtls=True))
    # start() probes with blocking calls: off the loop that serves the server.
    plain = LiveLauncher(db_url, app.address)
    with pytest.raises(LaunchError, match="speaks TLS; set HODEI_TLS_CA"):
        await asyncio.to_thread(plain.start)

    launcher = LiveLauncher(db_url, app.address, tls_certs.client("good"))
    deployment = await asyncio.to_thread(launcher.start)
    assert deployment.tls_environment()["HODEI_TLS_CA"] == str(tls_certs.ca)
    driver = Driver(deployment.server_address, deployment.client_tls())
    try:
        assert await asyncio.to_thread(driver.health) == "SERVING"
    finally:
        driver.close()
