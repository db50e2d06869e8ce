"""hodei.providers.docker_provider without a daemon: the container it asks for (image,
command, environment, labels, resources) and its one-line errors. The daemon itself is
driven in tests/containers/test_docker_provider.py."""

from __future__ import annotations

import uuid

import pytest

from hodei.errors import ConfigError
from hodei.providers.base import ProvisionRequest
from hodei.providers.config import parse_providers
from hodei.providers.docker_provider import DockerProvider, memory_bytes, nano_cpus
from hodei.providers.registry import build_provider

ENTRY = {
    "name": "local-docker",
    "type": "docker",
    "image": "hodei/hodei:dev",
    "tags": {"pool": "docker"},
    "resources": {"requests": {"memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "1Gi"}},
    "docker": {"env": {"HODEI_LOG_FORMAT": "json"}},
}
JOB = uuid.UUID(int=7)


def provider(**changes: object) -> DockerProvider:
    built = build_provider(parse_providers([{**ENTRY, **changes}]).providers[0])
    assert isinstance(built, DockerProvider)
    return built


def test_the_container_runs_the_image_as_a_worker_with_its_token_and_labels() -> None:
    request = ProvisionRequest(
        token="hodei_abc_secret",
        server_address="10.0.0.5:50051",
        worker_name="local-docker-0123456789",
        slots=2,
        labels={"pool": "docker"},
        job_id=JOB,
    )
    options = provider().create_options(request)
    assert options["image"] == "hodei/hodei:dev"
    assert options["command"] == [
        "worker",
        "--server",
        "10.0.0.5:50051",
        "--name",
        "local-docker-0123456789",
        "--slots",
        "2",
    ]
    assert options["environment"] == {
        "HODEI_WORKER_METRICS_PORT": "0",
        "HODEI_LOG_FORMAT": "json",
        "HODEI_WORKER_LABELS": "pool=docker",
        "HODEI_TOKEN": "hodei_abc_secret",
    }
    assert "hodei_abc_secret" not in " ".join(options["command"])  # not visible in `ps`
    assert options["labels"] == {
        "io.hodei.managed": "true",
        "io.hodei.provider": "local-docker",
        "io.hodei.worker-name": "local-docker-0123456789",
        "io.hodei.job": str(JOB),
    }
    assert options["network_mode"] == "host" and options["auto_remove"] is True
    assert options["mem_limit"] == 1024**3
    assert options["mem_reservation"] == 128 * 1024**2
    assert options["nano_cpus"] == 500_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512Mi", 512 * 1024**2), ("1G", 10**9), ("1000", 1000), ("1.5Gi", int(1.5 * 1024**3))],
)
def test_memory_quantities(text: str, expected: int) -> None:
    assert memory_bytes(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("250m", 250_000_000), ("2", 2 * 10**9)])
def test_cpu_quantities(text: str, expected: int) -> None:
    assert nano_cpus(text) == expected


def test_a_bad_quantity_is_refused_when_the_provider_is_built() -> None:
    with pytest.raises(ConfigError, match="provider 'local-docker': memory 'lots' is not a"):
        provider(resources={"limits": {"memory": "lots"}})


async def test_an_unreachable_daemon_is_an_unhealthy_provider_in_one_line() -> None:
    unreachable = provider(docker={"base_url": "unix:///nonexistent/docker.sock"})
    health = await unreachable.health()
    assert not health.ok
    assert health.detail.startswith("cannot reach the Docker daemon: ")
    assert "\n" not in health.detail
    await unreachable.close()
