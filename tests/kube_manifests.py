"""Reading deploy/kubernetes for the tests: every manifest, its objects by kind and
name, the KEDA query. Shared by tests/unit/deploy (schema, probes, RBAC, KEDA) and
tests/integration/deploy (the KEDA query's names against a real exposition)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
KEDA = KUBERNETES / "keda"
SCRAPE = KUBERNETES / "prometheus-scrape.yml"
KUBERNETES_DOC = ROOT / "docs" / "kubernetes.md"


def yaml_files() -> list[Path]:
    """Every YAML file under deploy/kubernetes (manifests, kustomizations, the scrape
    configuration)."""
    return sorted(p for p in KUBERNETES.rglob("*") if p.suffix in (".yaml", ".yml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifest_files() -> list[Path]:
    """The files that hold Kubernetes objects (not kustomizations, not Prometheus's)."""
    return [
        p for p in yaml_files() if p.name != "kustomization.yaml" and p != SCRAPE and documents(p)
    ]


def objects() -> list[dict[str, Any]]:
    return [doc for path in manifest_files() for doc in documents(path)]


def find(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def kustomization(folder: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((folder / "kustomization.yaml").read_text()))


def scaled_object() -> dict[str, Any]:
    return find("ScaledObject", "hodei-worker")


def keda_queries() -> list[str]:
    """The PromQL of every prometheus trigger of the ScaledObject."""
    triggers = scaled_object()["spec"]["triggers"]
    return [str(t["metadata"]["query"]) for t in triggers if t["type"] == "prometheus"]


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return dict(found)
