"""deploy/kubernetes/keda/scaledobject.yaml and deploy/kubernetes/prometheus-scrape.yml:
the ScaledObject uses only KEDA's fields (the client has no model of it), scales the
static worker Deployment on metrics the platform exports, reads the database-wide
gauges with max, and its query parses (promtool); the scrape jobs carry the contract's
names and keep the pods the manifests annotate. That the names are exported by a real
server is checked in tests/integration/deploy/test_metric_names.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from harness.prometheus import SERVER_JOB, WORKER_JOB, require_tool
from hodei.metrics.families import ServerMetrics
from tests.deploy_files import DATABASE_WIDE, exported_names, metric_names, recording_rules_file
from tests.kube_manifests import (
    KUBERNETES_DOC,
    ROOT,
    SCRAPE,
    container,
    find,
    keda_queries,
    scaled_object,
)
from tests.kube_models import validate

#: The fields of KEDA 2.x's ScaledObject (keda.sh/v1alpha1) this file may use, by
#: where they sit; the API server would drop any other key without a word.
SPEC_FIELDS = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
    "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced",
    "triggers",
}  # fmt: skip
TARGET_FIELDS = {"apiVersion", "kind", "name", "envSourceContainerName"}
ADVANCED_FIELDS = {
    "restoreToOriginalReplicaCount",
    "horizontalPodAutoscalerConfig",
    "scalingModifiers",
}
HPA_CONFIG_FIELDS = {"name", "behavior"}
TRIGGER_FIELDS = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
#: The prometheus scaler's metadata keys (all strings).
PROMETHEUS_KEYS = {
    "serverAddress", "query", "threshold", "activationThreshold", "namespace",
    "customHeaders", "ignoreNullValues", "unsafeSsl", "queryParameters", "authModes",
}  # fmt: skip


def _unknown(section: dict[str, Any], allowed: set[str]) -> set[str]:
    return set(section) - allowed


def test_the_scaled_object_uses_only_kedas_fields() -> None:
    obj = scaled_object()
    assert obj["apiVersion"] == "keda.sh/v1alpha1"
    spec = obj["spec"]
    assert _unknown(spec, SPEC_FIELDS) == set()
    assert _unknown(spec["scaleTargetRef"], TARGET_FIELDS) == set()
    assert _unknown(spec["advanced"], ADVANCED_FIELDS) == set()
    hpa = spec["advanced"]["horizontalPodAutoscalerConfig"]
    assert _unknown(hpa, HPA_CONFIG_FIELDS) == set()
    # KEDA hands `behavior` to the HPA it makes: autoscaling/v2's own type
    validate(hpa["behavior"], "V2HorizontalPodAutoscalerBehavior")
    for key in ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"):
        assert isinstance(spec[key], int), key
    assert 0 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    for trigger in spec["triggers"]:
        assert _unknown(trigger, TRIGGER_FIELDS) == set()
        assert all(isinstance(v, str) for v in trigger["metadata"].values()), "strings only"


def test_it_scales_the_static_worker_deployment_by_their_slots() -> None:
    target = scaled_object()["spec"]["scaleTargetRef"]
    workers = find("Deployment", "hodei-worker")
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        workers["apiVersion"],
        workers["kind"],
        workers["metadata"]["name"],
    )
    [trigger] = scaled_object()["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    meta = trigger["metadata"]
    assert _unknown(meta, PROMETHEUS_KEYS) == set()
    assert {"serverAddress", "query", "threshold"} <= set(meta)
    slots = {v["name"]: v.get("value") for v in container(workers, "worker")["env"]}["HODEI_SLOTS"]
    assert meta["threshold"] == slots, "one worker per HODEI_SLOTS jobs"


def _server_families() -> dict[str, str]:
    return {family.name: family.type for family in ServerMetrics().registry.collect()}


def test_the_query_names_queue_metrics_the_server_exports() -> None:
    exported = exported_names(_server_families())
    for query in keda_queries():
        names = metric_names(query)
        assert "hodei_queue_depth" in names
        assert names <= exported, f"not exported by a server: {names - exported}"


def test_database_wide_gauges_are_read_with_max_never_summed() -> None:
    """Every server replica reports the same queue: sum would count it once per
    replica (docs/observability.md, "Per process or database-wide"). KEDA needs one
    number, so each gauge is max()ed to a single series."""
    for query in keda_queries():
        assert "sum" not in query
        for name in metric_names(query) & DATABASE_WIDE:
            for match in re.finditer(rf"\b{name}\{{([^}}]*)\}}", query):
                assert f'job="{SERVER_JOB}"' in match.group(1), "the servers' gauge"
                assert re.search(r"\bmax\s*\(\s*$", query[: match.start()]), f"{name} not in max()"


def test_the_query_parses(tmp_path: Path) -> None:
    rules = recording_rules_file(keda_queries(), tmp_path / "keda.yml")
    result = subprocess.run(
        [str(require_tool("promtool")), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_scrape_config_passes_promtool_and_names_the_contract_jobs(tmp_path: Path) -> None:
    """Debian's promtool (2.42, what scripts/install_prometheus.sh installs) is built
    without Kubernetes service discovery and refuses `kubernetes_sd_configs`; the rest
    of each job (its relabelling, the regexes) is checked with the discovery swapped for
    a static target."""
    config = yaml.safe_load(SCRAPE.read_text())
    assert [job["job_name"] for job in config["scrape_configs"]] == [SERVER_JOB, WORKER_JOB]
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs") == [
            {"role": "pod", "namespaces": {"names": ["hodei"]}}
        ]
        job["static_configs"] = [{"targets": ["127.0.0.1:9464"]}]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [str(require_tool("promtool")), "check", "config", str(checked)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_scrape_jobs_keep_the_pods_the_manifests_label_and_annotate() -> None:
    config = yaml.safe_load(SCRAPE.read_text())
    for job, deployment in ((SERVER_JOB, "hodei-server"), (WORKER_JOB, "hodei-worker")):
        [scrape] = [j for j in config["scrape_configs"] if j["job_name"] == job]
        keeps = {
            tuple(r["source_labels"]): r["regex"]
            for r in scrape["relabel_configs"]
            if r.get("action") == "keep"
        }
        meta = find("Deployment", deployment)["spec"]["template"]["metadata"]
        name = keeps[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)]
        assert re.fullmatch(name, meta["labels"]["app.kubernetes.io/name"])
        scrape_flag = keeps[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)]
        assert re.fullmatch(scrape_flag, meta["annotations"]["prometheus.io/scrape"])


def test_the_readme_and_the_docs_show_the_query_that_ships() -> None:
    def flat(text: str) -> str:
        return "".join(text.split())

    [query] = keda_queries()
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### KEDA\n") :]
    block = section[
        section.index("```promql\n") + 10 : section.index("```\n", section.index("```promql"))
    ]
    assert flat(block) == flat(query)
    assert flat(query) in flat(KUBERNETES_DOC.read_text())
