"""hodei.providers.kubernetes_provider against a fake Kubernetes API server (a real HTTP
server, tests/fake_kube_api.py) through the official client's own REST calls: the call
sequence, the label selectors, and the API's errors as one-line reasons."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hodei.providers.base import ProvisionedState, ProvisioningError, ProvisionRequest
from hodei.providers.config import parse_providers
from hodei.providers.kubernetes_provider import KubernetesProvider
from hodei.providers.registry import factory_for
from tests.fake_kube_api import FakeKubeApi

NS = "hodei-workers"
TOKEN = "hodei_0123abcd_single-use-secret"
SELECTOR = "app.kubernetes.io/name=hodei-worker,hodei.io/provider={}"


@pytest.fixture
def kube_api() -> Iterator[FakeKubeApi]:
    api = FakeKubeApi().start()
    yield api
    api.stop()


def provider(
    url: str, name: str = "cluster", max_workers: int = 2, **options: Any
) -> KubernetesProvider:
    entry = {
        "name": name,
        "type": "kubernetes",
        "max_workers": max_workers,
        "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "512Mi"}},
        "kubernetes": {"namespace": NS, "api_url": url, "request_timeout": 5, **options},
    }
    return KubernetesProvider(parse_providers({"providers": [entry]}).providers[0])


def request(worker_name: str = "cluster-1") -> ProvisionRequest:
    return ProvisionRequest(token=TOKEN, server_address="hodei:50051", worker_name=worker_name)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_registry_builds_it_for_type_kubernetes() -> None:
    assert factory_for("kubernetes") is KubernetesProvider


async def test_provision_makes_the_secret_then_the_pod_then_gives_the_secret_to_the_pod(
    kube_api: FakeKubeApi,
) -> None:
    k8s = provider(kube_api.url)
    worker = await k8s.provision(request())
    await k8s.close()

    assert kube_api.sequence() == [
        ("create", "secrets", None),
        ("create", "pods", None),
        ("patch", "secrets", "cluster-1-token"),
    ]
    assert {c.namespace for c in kube_api.calls} == {NS}
    pod = kube_api.stored("pods", NS)["cluster-1"]
    secret = kube_api.stored("secrets", NS)["cluster-1-token"]
    assert secret["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "cluster-1", "uid": pod["metadata"]["uid"]}
    ]
    # a mapping body goes as a strategic merge patch (a JSON patch would be refused)
    assert kube_api.calls[2].content_type == "application/strategic-merge-patch+json"
    # the token went over the wire in the Secret only
    assert TOKEN in json.dumps(kube_api.calls[0].body)
    assert TOKEN not in json.dumps(kube_api.calls[1].body)
    assert (worker.provider, worker.handle, worker.worker_name) == (
        "cluster",
        "cluster-1",
        "cluster-1",
    )
    assert worker.state is ProvisionedState.STARTING and worker.created_at is not None


async def test_terminate_deletes_the_pod_and_its_secret(kube_api: FakeKubeApi) -> None:
    k8s = provider(kube_api.url)
    worker = await k8s.provision(request())
    kube_api.calls.clear()
    await k8s.terminate(worker.handle)

    assert kube_api.sequence() == [
        ("delete", "pods", "cluster-1"),
        ("delete", "secrets", "cluster-1-token"),
    ]
    assert kube_api.calls[0].query["propagationPolicy"] == "Background"
    assert kube_api.stored("pods", NS) == {} and kube_api.stored("secrets", NS) == {}


async def test_terminating_what_is_already_gone_is_no_error(kube_api: FakeKubeApi) -> None:
    await provider(kube_api.url).terminate("never-existed")
    assert kube_api.sequence() == [
        ("delete", "pods", "never-existed"),
        ("delete", "secrets", "never-existed-token"),
    ]


async def test_list_and_capacity_select_this_providers_pods_by_label(kube_api: FakeKubeApi) -> None:
    mine, other = provider(kube_api.url, "cluster"), provider(kube_api.url, "gpu", max_workers=5)
    await mine.provision(request("cluster-1"))
    await other.provision(request("gpu-1"))
    assert await mine.capacity() == 1

    await mine.provision(request("cluster-2"))
    listed = await mine.list()
    assert sorted(w.worker_name for w in listed) == ["cluster-1", "cluster-2"]
    assert await mine.capacity() == 0
    assert [w.handle for w in await other.list()] == ["gpu-1"]
    assert await other.capacity() == 4

    selectors = {c.query.get("labelSelector") for c in kube_api.calls if c.verb == "list"}
    assert selectors == {SELECTOR.format("cluster"), SELECTOR.format("gpu")}


async def test_a_finished_pod_is_exited_and_frees_its_place(kube_api: FakeKubeApi) -> None:
    kube_api.phase = "Succeeded"
    k8s = provider(kube_api.url, max_workers=1)
    await k8s.provision(request())
    assert [w.state for w in await k8s.list()] == [ProvisionedState.EXITED]
    assert await k8s.capacity() == 1


async def test_health_is_one_small_list_call(kube_api: FakeKubeApi) -> None:
    health = await provider(kube_api.url).health()
    assert health.ok, health.detail
    assert NS in health.detail and kube_api.url in health.detail
    [call] = kube_api.calls
    assert (call.verb, call.resource, call.query["limit"]) == ("list", "pods", "1")


async def test_an_unreachable_api_is_unhealthy_and_provisioning_fails_in_one_line() -> None:
    k8s = provider(closed_port_url())
    health = await k8s.health()
    assert not health.ok
    assert "API unreachable at http://127.0.0.1:" in health.detail
    with pytest.raises(ProvisioningError) as failure:
        await k8s.provision(request())
    assert "cannot create the token secret: API unreachable" in str(failure.value)
    assert "\n" not in str(failure.value)


async def test_forbidden_is_unhealthy_and_names_the_role(kube_api: FakeKubeApi) -> None:
    message = 'pods is forbidden: User "system:serviceaccount:hodei:hodei-server" cannot list'
    kube_api.fail("GET", "pods", 403, message)
    health = await provider(kube_api.url).health()
    assert not health.ok
    assert "forbidden in namespace 'hodei-workers' (403" in health.detail
    assert "deploy/kubernetes/base/rbac.yaml" in health.detail and message in health.detail


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [
        (403, 'pods "cluster-1" is forbidden: cannot create', "forbidden in namespace"),
        (
            403,
            'pods "cluster-1" is forbidden: exceeded quota: compute, requested: cpu=100m',
            "quota exceeded in namespace 'hodei-workers' (403)",
        ),
        (409, 'pods "cluster-1" already exists', "already exists (409)"),
        (500, "etcdserver: request timed out", "API error 500"),
    ],
)
async def test_a_refused_pod_fails_provisioning_and_removes_its_secret(
    kube_api: FakeKubeApi, status: int, message: str, reason: str
) -> None:
    kube_api.fail("POST", "pods", status, message)
    with pytest.raises(ProvisioningError) as failure:
        await provider(kube_api.url).provision(request())
    text = str(failure.value)
    assert text.startswith("kubernetes provider 'cluster': cannot create the worker pod: ")
    assert reason in text and message in text and "\n" not in text
    assert kube_api.sequence() == [
        ("create", "secrets", None),
        ("create", "pods", None),
        ("delete", "secrets", "cluster-1-token"),
    ]
    assert kube_api.stored("secrets", NS) == {}


async def test_a_missing_namespace_is_named(kube_api: FakeKubeApi) -> None:
    kube_api.fail("POST", "secrets", 404, 'namespaces "hodei-workers" not found')
    with pytest.raises(ProvisioningError, match=r"does namespace 'hodei-workers' exist\?"):
        await provider(kube_api.url).provision(request())
    assert kube_api.sequence() == [("create", "secrets", None)]


async def test_a_failed_owner_patch_keeps_the_worker_and_terminate_still_cleans_up(
    kube_api: FakeKubeApi,
) -> None:
    kube_api.fail("PATCH", "secrets", 500, "conflict storm")
    k8s = provider(kube_api.url)
    worker = await k8s.provision(request())
    assert "ownerReferences" not in kube_api.stored("secrets", NS)["cluster-1-token"]["metadata"]
    await k8s.terminate(worker.handle)
    assert kube_api.stored("pods", NS) == {} and kube_api.stored("secrets", NS) == {}


async def test_an_invalid_pod_is_refused_by_the_fake_like_the_api_would(
    kube_api: FakeKubeApi,
) -> None:
    """The fake checks bodies against the schema: a pod the client would send with a
    wrong field is a 422, which the provider reports as such."""
    k8s = provider(kube_api.url, image_pull_policy="Never")
    kube_api.fail("POST", "pods", 422, 'Pod "cluster-1" is invalid: spec.containers[0].image')
    with pytest.raises(ProvisioningError, match=r"the API rejected the object \(422\)"):
        await k8s.provision(request())


def kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig as kubectl writes one: a cluster, a user, a context."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "hodei", "user": {"token": "kubeconfig-token"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "hodei"}}],
                "current-context": "fake",
            }
        )
    )
    return path


async def test_without_api_url_it_uses_the_kubeconfig_and_its_credentials(
    kube_api: FakeKubeApi, tmp_path: Path
) -> None:
    config = kubeconfig(tmp_path / "config", kube_api.url)
    k8s = provider("", kubeconfig=str(config), context="fake")
    assert (await k8s.health()).ok
    await k8s.provision(request())
    assert [c.authorization for c in kube_api.calls] == ["Bearer kubeconfig-token"] * 4


async def test_no_cluster_and_no_kubeconfig_is_one_clear_line(tmp_path: Path) -> None:
    k8s = provider("", kubeconfig=str(tmp_path / "missing"))
    health = await k8s.health()
    assert not health.ok
    assert health.detail.startswith("kubernetes provider 'cluster': no API to talk to: ")
    with pytest.raises(ProvisioningError, match="no API to talk to"):
        await k8s.provision(request())
