"""The Docker provider against the real daemon: a job queued with no worker at all makes
the scaler start a container worker (the project's image); the job succeeds; the
container is gone after the idle TTL. A provider pointing at a missing image records
ProvisioningFailed, naming the image."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from harness.waits import wait_for_async
from hodei.api.v1 import common_pb2
from hodei.server.app import ServerApp
from tests.integration.providers.scaling import (
    providers_file,
    provisioned_started,
    provisioning_events,
)
from tests.integration.wire import Stubs

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[ServerApp]]


def containers_of(engine: Any, provider: str) -> list[Any]:
    return list(
        engine.containers.list(all=True, filters={"label": [f"io.hodei.provider={provider}"]})
    )


async def test_a_queued_job_starts_a_container_worker_that_goes_when_idle(
    docker_engine: Any, hodei_image: str, start_server: StartServer, tmp_path: Path
) -> None:
    path = providers_file(
        tmp_path,
        {
            "name": "ct-docker",
            "type": "docker",
            "image": hodei_image,
            "max_workers": 1,
            "idle_ttl": 3,
            "tags": {"pool": "docker"},
        },
    )
    app = await start_server(scaling={"providers_file": path, "interval": 0.2})
    try:
        async with Stubs(app.address) as stubs:
            job = await stubs.queue(
                ["sh", "-c", "echo from-a-container"], selector={"pool": "docker"}
            )
            done = await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=60)
        # The worker in the container can register and finish the job before the
        # provider's early-exit check (0.5 s) returns and the handle is recorded.
        row = await provisioned_started(app.database_url)
        assert row["state"] == "RUNNING"
        assert str(row["worker_id"]) == done.worker_id
        (container,) = containers_of(docker_engine, "ct-docker")
        assert container.id == row["handle"]
        assert container.labels["io.hodei.worker-name"] == row["worker_name"]
        assert container.labels["io.hodei.job"] == job.id
        env = container.attrs["Config"]["Env"]
        assert any(e.startswith("HODEI_TOKEN=hodei_") for e in env)  # its own token
        await wait_for_async(
            "the container to be gone after the idle TTL",
            lambda: _count(docker_engine, "ct-docker"),
            lambda n: n == 0,
            timeout_s=60,
        )
        events = [e["event_type"] for e in await provisioning_events(app.database_url)]
        assert events == ["WorkerProvisioned", "WorkerScaledDown"]
    finally:
        for leftover in containers_of(docker_engine, "ct-docker"):
            leftover.remove(force=True)


async def _count(engine: Any, provider: str) -> int:
    return len(containers_of(engine, provider))


async def test_a_missing_image_is_a_provisioning_failure_naming_it(
    docker_engine: Any, start_server: StartServer, tmp_path: Path
) -> None:
    path = providers_file(
        tmp_path,
        {"name": "ct-missing", "type": "docker", "image": "hodei/missing:none", "max_workers": 1},
    )
    app = await start_server(scaling={"providers_file": path, "interval": 0.2})
    async with Stubs(app.address) as stubs:
        await stubs.queue(["true"])
        events = await wait_for_async(
            "a ProvisioningFailed event",
            lambda: provisioning_events(app.database_url),
            lambda e: any(x["event_type"] == "ProvisioningFailed" for x in e),
            timeout_s=30,
        )
    failed = next(e["payload"] for e in events if e["event_type"] == "ProvisioningFailed")
    assert failed["provider"] == "ct-missing"
    assert failed["error"] == "image 'hodei/missing:none' not found on the Docker daemon"
    assert containers_of(docker_engine, "ct-missing") == []
    # hodei-diagnose names it, from the database alone.
    report = tmp_path / "diagnose.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hodei.diagnose.cli",
        "--database-url",
        app.database_url,
        "--only",
        "providers",
        "--format",
        "json",
        "--output",
        str(report),
        env={k: v for k, v in os.environ.items() if not k.startswith("HODEI_")},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2, stderr.decode()
    diagnosis = json.loads(report.read_text())
    assert diagnosis["root_cause_code"] == "PROVISIONING_FAILING"
    assert "image 'hodei/missing:none' not found" in diagnosis["root_cause"]
