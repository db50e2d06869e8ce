"""deploy/kubernetes/base/rbac.yaml grants the server exactly the verbs the Kubernetes
provider uses: every path of the provider (provision, a refused pod and its cleanup,
list, capacity, health, terminate) is driven against the fake API server, and the
(resource, verb) pairs it recorded must equal the Role's rules, no more, no less."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from hodei.providers.base import ProvisioningError, ProvisionRequest
from hodei.providers.config import parse_providers
from hodei.providers.kubernetes_provider import KubernetesProvider
from tests.fake_kube_api import FakeKubeApi
from tests.kube_manifests import find


@pytest.fixture
def kube_api() -> Iterator[FakeKubeApi]:
    api = FakeKubeApi().start()
    yield api
    api.stop()


def _role_grants() -> set[tuple[str, str]]:
    role = find("Role", "hodei-worker-provisioner")
    grants = set()
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""], "the provider uses the core API group only"
        assert "resourceNames" not in rule
        grants |= {(resource, verb) for resource in rule["resources"] for verb in rule["verbs"]}
    return grants


async def _every_provider_path(api: FakeKubeApi) -> None:
    text = find("ConfigMap", "hodei-providers")["data"]["providers.yaml"]
    [entry] = parse_providers(yaml.safe_load(text)).providers
    entry = entry.model_copy(
        update={"kubernetes": entry.kubernetes.model_copy(update={"api_url": api.url})}
    )
    provider = KubernetesProvider(entry)
    request = ProvisionRequest(token="hodei_x_y", server_address="hodei:50051", worker_name="w-1")
    worker = await provider.provision(request)
    api.fail("POST", "pods", 403, "exceeded quota")
    with pytest.raises(ProvisioningError):
        await provider.provision(
            ProvisionRequest(token="t", server_address="a:1", worker_name="w-2")
        )
    await provider.list()
    await provider.capacity()
    assert (await provider.health()).ok
    await provider.terminate(worker.handle)
    await provider.terminate("gone-already")
    await provider.close()


async def test_the_role_grants_exactly_the_verbs_the_provider_calls(kube_api: FakeKubeApi) -> None:
    await _every_provider_path(kube_api)
    used = {(c.resource, c.verb) for c in kube_api.calls}
    assert used == {
        ("pods", "create"),
        ("pods", "list"),
        ("pods", "delete"),
        ("secrets", "create"),
        ("secrets", "patch"),
        ("secrets", "delete"),
    }, "the provider's calls changed: update rbac.yaml and this list together"
    assert _role_grants() == used


async def test_the_role_sits_where_the_provider_works(kube_api: FakeKubeApi) -> None:
    await _every_provider_path(kube_api)
    role = find("Role", "hodei-worker-provisioner")
    assert {c.namespace for c in kube_api.calls} == {role["metadata"]["namespace"]}
