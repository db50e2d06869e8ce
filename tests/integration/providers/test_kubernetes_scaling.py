"""The scaler with the Kubernetes provider, end to end short of a cluster: a real server
with a providers file naming a `kubernetes` entry, the official client's calls going to
the fake API server, and a fake kubelet running each created pod as a local worker
process from the pod spec alone (env, and the token from the Secret by reference). A
job queued with no worker gets a pod whose worker runs it; idle past its TTL, the pod
and its Secret are deleted. A quota refusal is a ProvisioningFailed naming it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from harness.waits import wait_for_async
from hodei.api.v1 import common_pb2
from hodei.server.app import ServerApp
from tests.fake_kube_api import FakeKubeApi
from tests.integration.cli_process import hodei
from tests.integration.providers.kubelet import FakeKubelet
from tests.integration.providers.scaling import (
    providers_file,
    provisioned_started,
    provisioning_events,
    rows,
)
from tests.integration.wire import Stubs

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[ServerApp]]
NS = "hodei"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[FakeKubeApi, FakeKubelet]]:
    api = FakeKubeApi().start()
    kubelet = FakeKubelet(api, tmp_path)
    yield api, kubelet
    kubelet.stop()
    api.stop()


def kubernetes_entry(api: FakeKubeApi, **fields: Any) -> dict[str, Any]:
    return {
        "name": "cluster",
        "type": "kubernetes",
        "max_workers": 2,
        "idle_ttl": 1.5,
        "tags": {"pool": "k8s"},
        "resources": {"requests": {"cpu": "100m"}},
        "kubernetes": {"namespace": NS, "api_url": api.url, "service_account": "hodei-worker"},
        **fields,
    }


async def scaling_server(start_server: StartServer, path: Path) -> ServerApp:
    return await start_server(
        scaling={"providers_file": path, "interval": 0.2},
        recovery={"heartbeat_interval": 0.5},
    )


def changes(api: FakeKubeApi) -> list[tuple[str, str, str | None]]:
    """The calls that change something (the scaler's health checks list every round)."""
    return [c for c in api.sequence() if c[0] != "list"]


async def test_a_queued_job_gets_a_pod_whose_worker_runs_it_and_goes_when_idle(
    start_server: StartServer, tmp_path: Path, cluster: tuple[FakeKubeApi, FakeKubelet]
) -> None:
    api, kubelet = cluster
    app = await scaling_server(start_server, providers_file(tmp_path, kubernetes_entry(api)))
    async with Stubs(app.address) as stubs:
        job = await stubs.queue(["python3", "-c", "print('hi')"], selector={"pool": "k8s"})
        done = await stubs.wait_state(job.id, common_pb2.JOB_STATE_SUCCEEDED, seconds=60)
    row = await provisioned_started(app.database_url)
    assert row["provider"] == "cluster" and row["job_id"] == uuid.UUID(job.id)
    assert str(row["worker_id"]) == done.worker_id
    (worker,) = await rows(
        app.database_url, "SELECT * FROM workers WHERE id = %s", row["worker_id"]
    )
    assert worker["labels"] == {"pool": "k8s"} and worker["name"] == row["worker_name"]
    pod_name = row["handle"]
    assert changes(api)[:3] == [
        ("create", "secrets", None),
        ("create", "pods", None),
        ("patch", "secrets", f"{pod_name}-token"),
    ]

    await wait_for_async(
        "the provisioned worker to be removed and TERMINATED",
        lambda: rows(
            app.database_url,
            "SELECT p.state, w.state AS worker_state FROM provisioned_workers p "
            "JOIN workers w ON w.id = p.worker_id",
        ),
        lambda r: r == [{"state": "REMOVED", "worker_state": "TERMINATED"}],
        timeout_s=30,
    )
    assert ("delete", "pods", pod_name) in changes(api)
    assert api.stored("pods", NS) == {} and api.stored("secrets", NS) == {}
    await wait_for_async(
        "the pod's worker process to exit", _async(kubelet.running), lambda r: r == [], timeout_s=20
    )
    events = [e["event_type"] for e in await provisioning_events(app.database_url)]
    assert events == ["WorkerProvisioned", "WorkerScaledDown"]


async def test_a_quota_refusal_is_a_provisioning_failure_that_names_it(
    start_server: StartServer, tmp_path: Path, cluster: tuple[FakeKubeApi, FakeKubelet]
) -> None:
    api, _ = cluster
    message = 'pods "x" is forbidden: exceeded quota: compute, requested: cpu=100m'
    api.fail("POST", "pods", 403, message, times=1000)
    app = await scaling_server(start_server, providers_file(tmp_path, kubernetes_entry(api)))
    async with Stubs(app.address) as stubs:
        await stubs.queue(["true"], selector={"pool": "k8s"})
        events = await wait_for_async(
            "a ProvisioningFailed event",
            lambda: provisioning_events(app.database_url),
            lambda e: any(x["event_type"] == "ProvisioningFailed" for x in e),
            timeout_s=30,
        )
    failed = next(e["payload"] for e in events if e["event_type"] == "ProvisioningFailed")
    assert failed["provider"] == "cluster"
    assert "quota exceeded in namespace 'hodei' (403)" in failed["error"]
    assert message in failed["error"]
    # the refused pod's secret was taken back
    assert api.stored("pods", NS) == {} and api.stored("secrets", NS) == {}


def _async(read: Callable[[], list[str]]) -> Callable[[], Awaitable[list[str]]]:
    async def call() -> list[str]:
        return read()

    return call


async def test_hodei_providers_shows_the_api_reachable_then_not(
    start_server: StartServer, tmp_path: Path, cluster: tuple[FakeKubeApi, FakeKubelet]
) -> None:
    api, _ = cluster
    app = await scaling_server(start_server, providers_file(tmp_path, kubernetes_entry(api)))

    async def listed() -> dict[str, Any]:
        result = await hodei("providers", "--output", "json", server=app.address)
        assert result.returncode == 0, str(result)
        [provider] = json.loads(result.stdout)
        return dict(provider)

    healthy = await wait_for_async("a health check", listed, lambda p: p["healthy"], timeout_s=20)
    assert f"kubernetes API at {api.url} reachable, namespace 'hodei'" in healthy["detail"]
    api.stop()
    down = await wait_for_async(
        "the provider unhealthy", listed, lambda p: not p["healthy"], timeout_s=30
    )
    assert f"cannot reach the API: API unreachable at {api.url}" in down["detail"]
