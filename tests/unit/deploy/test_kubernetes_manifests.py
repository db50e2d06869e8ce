"""deploy/kubernetes: every manifest parses, every object fits the API schema of the
official client's models (a misspelt field fails), kustomize builds both variants, and
the pieces fit together: probes on grpc.health.v1 at the gRPC port, the Service and the
metrics annotations on the real ports, every ConfigMap/Secret reference resolves, every
variable is a real setting, the token never sits in plain env."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from typing import Any

import pytest
import yaml

from hodei.errors import HodeiError
from hodei.providers import kubernetes_objects
from hodei.providers.base import ProvisionRequest
from hodei.providers.config import parse_providers
from hodei.settings import load_settings, setting_fields
from tests.kube_manifests import (
    BASE,
    KEDA,
    KUBERNETES,
    container,
    documents,
    find,
    kustomization,
    manifest_files,
    objects,
    yaml_files,
)
from tests.kube_models import MODELS, schema_errors, validate

#: Not in the official client: checked in test_keda.py against KEDA's fields.
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject")}


def _core_objects() -> list[dict[str, Any]]:
    return [o for o in objects() if (o["apiVersion"], o["kind"]) not in CUSTOM_KINDS]


def _pod_spec(kind: str, name: str) -> dict[str, Any]:
    return dict(find(kind, name)["spec"]["template"]["spec"])


def test_every_file_parses_and_every_object_names_its_kind() -> None:
    assert {p.name for p in manifest_files()} >= {
        "namespace.yaml",
        "rbac.yaml",
        "configmap.yaml",
        "secret.yaml",
        "server-deployment.yaml",
        "service.yaml",
        "worker-deployment.yaml",
        "scaledobject.yaml",
    }
    for path in yaml_files():
        for doc in documents(path):
            assert isinstance(doc, dict), path
    for obj in objects():
        assert obj.get("apiVersion") and obj.get("kind") and obj["metadata"].get("name")
        assert (obj["apiVersion"], obj["kind"]) in set(MODELS) | CUSTOM_KINDS, obj["kind"]


@pytest.mark.parametrize(
    "obj", _core_objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}"
)
def test_each_object_fits_the_client_model_of_its_kind(obj: dict[str, Any]) -> None:
    model = validate(obj)
    assert model.metadata.name == obj["metadata"]["name"]
    if obj["kind"] != "Namespace":
        assert obj["metadata"]["namespace"] == "hodei"


def test_the_model_check_fails_on_a_misspelt_field() -> None:
    deployment = yaml.safe_load(yaml.safe_dump(find("Deployment", "hodei-server")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    deployment["spec"]["replicas"] = "2"
    assert sorted(schema_errors(deployment, "V1Deployment")) == [
        "spec.replicas: expected int, got str '2'",
        "spec.template.spec.containers[0].readinesProbe: not a field of V1Container",
    ]


def test_the_kustomizations_list_every_manifest() -> None:
    base = kustomization(BASE)
    assert sorted(base["resources"]) == sorted(
        p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml"
    )
    assert kustomization(KUBERNETES)["resources"] == ["base"]
    keda = kustomization(KEDA)
    assert keda["resources"] == ["../base", "scaledobject.yaml"]


@pytest.mark.parametrize("folder", [KUBERNETES, KEDA], ids=["static", "keda"])
def test_kubectl_kustomize_builds_it(folder: Any) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` not run")
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    built = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in built)
    assert "Deployment/hodei-server" in kinds and "Deployment/hodei-worker" in kinds
    workers = next(
        d for d in built if d["kind"] == "Deployment" and d["metadata"]["name"] == "hodei-worker"
    )
    if folder == KEDA:
        assert "ScaledObject/hodei-worker" in kinds
        assert "replicas" not in workers["spec"], "KEDA's HPA owns the replica count"
    else:
        assert workers["spec"]["replicas"] == 2


def test_two_server_replicas_probed_on_grpc_health_at_the_grpc_port() -> None:
    deployment = find("Deployment", "hodei-server")
    assert deployment["spec"]["replicas"] == 2
    server = container(deployment, "server")
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    config = find("ConfigMap", "hodei-config")["data"]
    assert ports == {
        "grpc": int(config["HODEI_PORT"]),
        "metrics": int(config["HODEI_METRICS_PORT"]),
    }
    assert ports["grpc"] == 50051
    for probe in ("startupProbe", "readinessProbe"):
        assert server[probe]["grpc"] == {"port": 50051}, probe
    # liveness: the port only (docs/kubernetes.md says why)
    assert server["livenessProbe"]["tcpSocket"]["port"] in ("grpc", 50051)
    assert server["args"] == ["server"]


def test_the_service_and_the_metrics_annotations_point_at_the_real_ports() -> None:
    deployment = find("Deployment", "hodei-server")
    template = deployment["spec"]["template"]
    service = find("Service", "hodei-server")
    selector = service["spec"]["selector"]
    assert selector.items() <= template["metadata"]["labels"].items()
    assert (
        deployment["spec"]["selector"]["matchLabels"].items()
        <= template["metadata"]["labels"].items()
    )
    named = {p["name"]: p for p in service["spec"]["ports"]}
    assert named["grpc"]["port"] == 50051 and named["grpc"]["targetPort"] == "grpc"
    assert named["metrics"]["targetPort"] == "metrics"
    for kind, name, port in (
        ("Deployment", "hodei-server", "9464"),
        ("Deployment", "hodei-worker", "9465"),
    ):
        meta = find(kind, name)["spec"]["template"]["metadata"]
        assert meta["annotations"]["prometheus.io/scrape"] == "true"
        assert meta["annotations"]["prometheus.io/port"] == port
        ports = [
            p["containerPort"]
            for c in find(kind, name)["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        ]
        assert int(port) in ports


def test_every_config_and_secret_reference_resolves() -> None:
    data = {
        (o["kind"], o["metadata"]["name"]): {**o.get("data", {}), **o.get("stringData", {})}
        for o in objects()
        if o["kind"] in ("ConfigMap", "Secret")
    }
    for deployment in ("hodei-server", "hodei-worker"):
        spec = _pod_spec("Deployment", deployment)
        for c in spec["containers"]:
            for source in c.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                assert (kind, ref["name"]) in data
            for var in c.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in data[("Secret", ref["name"])], var["name"]
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in data
        account = spec["serviceAccountName"]
        find("ServiceAccount", account)


def test_every_variable_is_a_setting_and_the_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    known = {f.env for f in setting_fields()}
    config = find("ConfigMap", "hodei-config")["data"]
    secrets = find("Secret", "hodei-secrets")["stringData"]
    worker_env = [v["name"] for v in container(find("Deployment", "hodei-worker"), "worker")["env"]]
    server_env = [v["name"] for v in container(find("Deployment", "hodei-server"), "server")["env"]]
    for name in [*config, *secrets, *worker_env, *server_env]:
        assert name in known, f"{name} is no setting of hodei.settings"
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.server.port == 50051 and settings.server.host == "0.0.0.0"
    assert str(settings.scaling.providers_file) == "/etc/hodei/providers.yaml"
    mount = container(find("Deployment", "hodei-server"), "server")["volumeMounts"][0]
    assert str(settings.scaling.providers_file).startswith(mount["mountPath"] + "/")


def test_the_shipped_providers_yaml_is_valid_and_matches_the_rbac() -> None:
    text = find("ConfigMap", "hodei-providers")["data"]["providers.yaml"]
    [entry] = parse_providers(yaml.safe_load(text)).providers
    assert entry.type == "kubernetes"
    role = find("Role", "hodei-worker-provisioner")
    assert entry.kubernetes.namespace == role["metadata"]["namespace"]
    assert entry.kubernetes.service_account is not None
    find("ServiceAccount", entry.kubernetes.service_account)
    binding = find("RoleBinding", "hodei-worker-provisioner")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": _pod_spec("Deployment", "hodei-server")["serviceAccountName"],
            "namespace": "hodei",
        }
    ]
    address = find("ConfigMap", "hodei-config")["data"]["HODEI_PROVISION_SERVER_ADDRESS"]
    meta = find("Service", "hodei-server")["metadata"]
    assert address == f"{meta['name']}.{meta['namespace']}.svc.cluster.local:50051"


def test_no_token_in_plain_env_and_workers_outlive_their_drain() -> None:
    for deployment in ("hodei-server", "hodei-worker"):
        for c in _pod_spec("Deployment", deployment)["containers"]:
            for var in c.get("env", []):
                if var["name"] == "HODEI_TOKEN":
                    assert "value" not in var and "secretKeyRef" in var["valueFrom"]
    worker = _pod_spec("Deployment", "hodei-worker")
    grace = {v["name"]: v.get("value") for v in worker["containers"][0]["env"]}[
        "HODEI_WORKER_SHUTDOWN_GRACE"
    ]
    assert worker["terminationGracePeriodSeconds"] > float(grace)


def test_the_static_workers_do_not_adopt_the_providers_pods() -> None:
    """A Deployment whose selector matched the provider's pods would take them over."""
    cfg = parse_providers({"providers": [{"name": "cluster", "type": "kubernetes"}]}).providers[0]
    request = ProvisionRequest(
        token="t", server_address="a:1", worker_name="w", job_id=uuid.uuid4()
    )
    pod_labels = kubernetes_objects.labels_for(cfg, request)
    selector = find("Deployment", "hodei-worker")["spec"]["selector"]["matchLabels"]
    assert not selector.items() <= pod_labels.items()
    template = find("Deployment", "hodei-worker")["spec"]["template"]["metadata"]["labels"]
    provider_selector = dict(
        t.split("=") for t in kubernetes_objects.selector("cluster").split(",")
    )
    assert not provider_selector.items() <= template.items()


def test_the_secrets_are_placeholders_a_server_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Applied unedited, the servers stop at start with one line instead of running
    with a key everyone who read this repository knows."""
    for name in ("hodei-secrets", "hodei-tokens"):
        values = find("Secret", name)["stringData"].values()
        assert all("CHANGE-ME" in value for value in values), name
    monkeypatch.setenv(
        "HODEI_SECRET_KEY", find("Secret", "hodei-secrets")["stringData"]["HODEI_SECRET_KEY"]
    )
    with pytest.raises(HodeiError, match="HODEI_SECRET_KEY"):
        load_settings()
