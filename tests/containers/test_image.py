"""The project image: entrypoint `hodei`, non-root, the grpc.health.v1 probe."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _run(client: Any, image: str, *args: str, entrypoint: list[str] | None = None) -> str:
    out = client.containers.run(
        image,
        list(args),
        entrypoint=entrypoint,
        network_mode="host",
        remove=True,
        stdout=True,
        stderr=True,
    )
    return bytes(out).decode()


def test_entrypoint_is_the_hodei_cli(docker_engine: Any, hodei_image: str) -> None:
    out = _run(docker_engine, hodei_image, "--help")
    for command in ("server", "worker", "db", "job"):
        assert command in out, out


def test_runs_as_a_non_root_user(docker_engine: Any, hodei_image: str) -> None:
    out = _run(docker_engine, hodei_image, "-u", entrypoint=["id"]).strip()
    assert out != "0", "the image runs as root"
    config = docker_engine.images.get(hodei_image).attrs["Config"]
    assert config["User"] == "hodei"
    assert config["Entrypoint"] == ["hodei"]


def test_healthcheck_fails_without_a_server(docker_engine: Any, hodei_image: str) -> None:
    # Port 9 (discard) on loopback: nothing answers gRPC there.
    container = docker_engine.containers.run(
        hodei_image,
        ["127.0.0.1:9"],
        entrypoint=["hodei-healthcheck"],
        network_mode="host",
        detach=True,
    )
    try:
        result = container.wait(timeout=30)
        logs = container.logs().decode()
    finally:
        container.remove(force=True)
    assert result["StatusCode"] == 1, logs
    assert "UNAVAILABLE" in logs or "DEADLINE_EXCEEDED" in logs, logs
    config = docker_engine.images.get(hodei_image).attrs["Config"]
    assert config["Healthcheck"]["Test"] == ["CMD", "hodei-healthcheck"]


def test_the_runtime_image_has_no_test_framework(docker_engine: Any, hodei_image: str) -> None:
    # The image installs `hodei` without extras: the platform, the CLI and the doctor,
    # and none of the e2e harness's test tools.
    probe = (
        "import importlib.util as u; "
        "print(sorted(m for m in ('pytest', 'pytest_bdd', 'testcontainers') if u.find_spec(m)))"
    )
    out = _run(docker_engine, hodei_image, "-c", probe, entrypoint=["/opt/hodei/bin/python"])
    assert out.strip() == "[]", out
    doctor = _run(docker_engine, hodei_image, "--help", entrypoint=["hodei-diagnose"])
    assert "--database-url" in doctor, doctor
