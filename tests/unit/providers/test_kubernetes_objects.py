"""hodei.providers.kubernetes_objects: the Pod and the token Secret of one worker,
serialized the way the client sends them and checked against the client's models (the
API's OpenAPI schema), and what the pod holds (no token, restartPolicy Never...)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from hodei.providers import kubernetes_objects as objects
from hodei.providers.base import ProvisionedState, ProvisionRequest
from hodei.providers.config import ProviderConfig, parse_providers
from tests.kube_models import schema_errors, serialize, validate

TOKEN = "hodei_0123abcd_s3cr3t-value-never-in-the-pod"


def config(**kubernetes: Any) -> ProviderConfig:
    entry = {
        "name": "cluster",
        "type": "kubernetes",
        "max_workers": 3,
        "image": "registry.example/hodei:1.2",
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": 1, "memory": "1Gi"},
        },
        "kubernetes": {
            "namespace": "hodei-workers",
            "service_account": "hodei-worker",
            **kubernetes,
        },
    }
    return parse_providers({"providers": [entry]}).providers[0]


def request(**overrides: Any) -> ProvisionRequest:
    values: dict[str, Any] = {
        "token": TOKEN,
        "server_address": "hodei-server.hodei.svc:50051",
        "worker_name": "cluster-7f3a",
        "slots": 4,
        "job_id": uuid.UUID(int=7),
        "labels": {"pool": "kubernetes", "zone": "b"},
        "env": {"HODEI_LOG_FORMAT": "json"},
    }
    values.update(overrides)
    return ProvisionRequest(**values)


def pod_body(
    cfg: ProviderConfig | None = None, req: ProvisionRequest | None = None
) -> dict[str, Any]:
    return serialize(objects.build_pod(cfg or config(), req or request()))


def test_the_pod_and_the_secret_fit_the_api_schema() -> None:
    pod = validate(pod_body(config(secret_name="hodei-tls", node_selector={"pool": "jobs"})))
    secret = validate(serialize(objects.build_secret(config(), request())))
    assert pod.spec.containers[0].image == "registry.example/hodei:1.2"
    assert secret.string_data == {"token": TOKEN}


def test_the_schema_check_catches_a_misspelt_field_and_a_wrong_type() -> None:
    body = pod_body()
    body["spec"]["restartPolcy"] = "Never"
    body["spec"]["containers"][0]["ports"][0]["containerPort"] = "9465"
    assert sorted(schema_errors(body, "V1Pod")) == [
        "spec.containers[0].ports[0].containerPort: expected int, got str '9465'",
        "spec.restartPolcy: not a field of V1PodSpec",
    ]
    with pytest.raises(AssertionError, match="restartPolcy"):
        validate(body)


def test_the_token_is_in_the_secret_only_and_the_pod_reads_it_by_reference() -> None:
    body = pod_body(req=request(env={"HODEI_TOKEN": "smuggled", "HODEI_LOG_FORMAT": "json"}))
    assert TOKEN not in json.dumps(body) and "smuggled" not in json.dumps(body)
    env = body["spec"]["containers"][0]["env"]
    token = [e for e in env if e["name"] == "HODEI_TOKEN"]
    assert token == [
        {
            "name": "HODEI_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "cluster-7f3a-token", "key": "token"}},
        }
    ]
    plain = {e["name"]: e["value"] for e in env if "value" in e}
    assert plain == {
        "HODEI_LOG_FORMAT": "json",
        "HODEI_SERVER_ADDRESS": "hodei-server.hodei.svc:50051",
        "HODEI_SLOTS": "4",
        "HODEI_WORKER_NAME": "cluster-7f3a",
        "HODEI_WORKER_LABELS": "pool=kubernetes,zone=b",
    }


def test_the_pod_runs_the_worker_once_as_configured() -> None:
    body = pod_body()
    spec, container = body["spec"], body["spec"]["containers"][0]
    assert spec["restartPolicy"] == "Never"
    assert spec["terminationGracePeriodSeconds"] > 30  # HODEI_WORKER_SHUTDOWN_GRACE
    assert spec["serviceAccountName"] == "hodei-worker"
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["args"] == ["worker"]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert body["metadata"]["namespace"] == "hodei-workers"
    assert body["metadata"]["labels"] == {
        "app.kubernetes.io/name": "hodei-worker",
        "app.kubernetes.io/managed-by": "hodei",
        "hodei.io/provider": "cluster",
        "hodei.io/worker-name": "cluster-7f3a",
        "hodei.io/job": str(uuid.UUID(int=7)),
    }


def test_no_resources_configured_sends_none() -> None:
    cfg = parse_providers({"providers": [{"name": "bare", "type": "kubernetes"}]}).providers[0]
    body = validate(pod_body(cfg, request(job_id=None)))
    assert body.spec.containers[0].resources is None
    assert "hodei.io/job" not in body.metadata.labels


@pytest.mark.parametrize(
    ("worker", "pod"),
    [
        ("cluster-7f3a", "cluster-7f3a"),
        ("Cluster_7F3A", "cluster-7f3a"),
        ("7f3a", "hodei-7f3a"),
        ("w" * 80, "w" * 63),
        ("a.b c", "a-b-c"),
    ],
)
def test_pod_names_are_dns_labels(worker: str, pod: str) -> None:
    assert objects.pod_name(worker) == pod
    assert len(objects.secret_name(pod)) <= 63


def test_a_long_or_odd_worker_name_still_makes_a_valid_label_and_is_kept_whole() -> None:
    name = "Pool/" + "x" * 70 + "_"
    body = pod_body(req=request(worker_name=name))
    value = body["metadata"]["labels"]["hodei.io/worker-name"]
    assert len(value) <= 63 and value[0].isalnum() and value[-1].isalnum()
    assert body["metadata"]["annotations"]["hodei.io/worker-name"] == name


def test_the_owner_patch_names_the_pod() -> None:
    patch = objects.owner_patch("cluster-7f3a", "uid-1")
    validate(patch["metadata"]["ownerReferences"][0], "V1OwnerReference")
    assert patch == {
        "metadata": {
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": "cluster-7f3a", "uid": "uid-1"}
            ]
        }
    }


@pytest.mark.parametrize(
    ("phase", "deleting", "state"),
    [
        ("Pending", False, ProvisionedState.STARTING),
        ("Running", False, ProvisionedState.RUNNING),
        ("Succeeded", False, ProvisionedState.EXITED),
        ("Failed", False, ProvisionedState.EXITED),
        ("Running", True, ProvisionedState.EXITED),
        (None, False, ProvisionedState.UNKNOWN),
    ],
)
def test_pod_phases(phase: str | None, deleting: bool, state: ProvisionedState) -> None:
    assert objects.pod_state(phase, deleting) is state
