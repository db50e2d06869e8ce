"""hodei.providers.config: providers.yaml, its defaults and its one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from hodei.errors import ConfigError
from hodei.providers.config import ProviderConfig, load_providers, parse_providers
from hodei.providers.registry import build_provider, factory_for, register

GOOD = """
providers:
  - name: local-docker
    type: docker
    priority: 10
    max_workers: 4
    tags: {pool: docker, gpu: false}
    image: hodei/hodei:dev
    idle_ttl: 60
    resources: {requests: {cpu: 1, memory: 256Mi}, limits: {cpu: "2", memory: 1Gi}}
    docker: {network_mode: host, env: {HODEI_LOG_FORMAT: json}}
  - name: cluster
    type: kubernetes
    priority: 5
    max_workers: 50
    kubernetes: {namespace: hodei, service_account: hodei-worker}
  - name: laptop
    type: process
"""


def test_a_full_file_parses_with_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(GOOD)
    parsed = load_providers(path)
    docker, cluster, laptop = parsed.providers
    assert docker.tags == {"pool": "docker", "gpu": "false"}
    assert docker.resources.requests.cpu == "1"
    assert docker.resources.limits.memory == "1Gi"
    assert docker.docker.env == {"HODEI_LOG_FORMAT": "json"}
    assert docker.idle_ttl == 60.0
    assert cluster.kubernetes.namespace == "hodei"
    assert cluster.kubernetes.service_account == "hodei-worker"
    assert laptop.priority == 0 and laptop.max_workers == 1 and laptop.slots == 1
    assert laptop.docker.network_mode == "host"
    assert [p.name for p in parsed.by_priority()] == ["local-docker", "cluster", "laptop"]


def test_a_bare_list_and_an_empty_file_are_accepted() -> None:
    assert parse_providers([{"name": "a", "type": "process"}]).providers[0].name == "a"
    assert parse_providers(None).providers == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"providers": [{"name": "a", "type": "lxc"}]}, "provider 'a': type: Input should be"),
        ({"providers": [{"type": "docker"}]}, "provider #1: name: Field required"),
        ({"providers": [{"name": "Bad_Name", "type": "docker"}]}, "provider 'Bad_Name': name:"),
        (
            {"providers": [{"name": "a", "type": "docker", "max_workers": -1}]},
            "provider 'a': max_workers: Input should be greater than or equal to 0",
        ),
        (
            {"providers": [{"name": "a", "type": "docker", "idle_ttl": 0}]},
            "provider 'a': idle_ttl: Input should be greater than 0",
        ),
        (
            {"providers": [{"name": "a", "type": "docker", "colour": "red"}]},
            "provider 'a': colour: Extra inputs are not permitted",
        ),
        (
            {"providers": [{"name": "a", "type": "docker", "tags": {"bad key!": "x"}}]},
            "provider 'a': tags: tag key 'bad key!' is not a label key",
        ),
        (
            {"providers": [{"name": "a", "type": "process"}, {"name": "a", "type": "docker"}]},
            "two providers are named 'a'",
        ),
        ("just text", "expected a mapping with a 'providers' list"),
    ],
)
def test_bad_entries_are_refused_in_one_line(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_providers(data, "p.yaml")
    text = str(caught.value)
    assert text.startswith("p.yaml: ") and message in text, text
    assert "\n" not in text


def test_unreadable_and_malformed_files_are_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read providers file .*missing\.yaml"):
        load_providers(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("providers:\n  - name: a\n   type: [docker\n")
    with pytest.raises(ConfigError) as caught:
        load_providers(broken)
    assert str(caught.value).startswith(f"{broken} line ") and "\n" not in str(caught.value)


def test_the_registry_builds_registered_types_and_refuses_unknown_ones() -> None:
    built: list[str] = []

    class Fake:
        def __init__(self, config: ProviderConfig) -> None:
            built.append(config.name)

    register("fake-type-for-test", Fake)  # type: ignore[arg-type]
    assert factory_for("fake-type-for-test") is Fake
    config = parse_providers([{"name": "x", "type": "process"}]).providers[0]
    config = config.model_copy(update={"type": "fake-type-for-test"})
    build_provider(config)
    assert built == ["x"]
    with pytest.raises(ConfigError, match="unknown provider type 'lxc'"):
        factory_for("lxc")
