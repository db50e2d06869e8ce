"""Fixtures for the container tests: a Docker engine and the locally built images.

These tests start real containers (seconds each), so they run in the CI container
stage (.ci/containers-stage.sh sets HODEI_CONTAINER_TESTS=1 after building the
images) and are skipped, with that reason, in a plain `pytest` run. Without a
Docker engine they are skipped with the engine's error.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from harness.launchers.docker_images import (
    DEFAULT_IMAGE,
    LOCAL_POSTGRES_IMAGE,
    OFFICIAL_POSTGRES_IMAGE,
    DockerUnavailable,
    docker_client,
)


@pytest.fixture(scope="session")
def docker_engine() -> Any:
    if os.environ.get("HODEI_CONTAINER_TESTS") != "1":
        pytest.skip(
            "container tests run in the CI container stage "
            "(.ci/containers-stage.sh, or set HODEI_CONTAINER_TESTS=1)"
        )
    try:
        client = docker_client()
    except DockerUnavailable as exc:
        pytest.skip(str(exc))
    yield client
    client.close()


@pytest.fixture(scope="session")
def hodei_image(docker_engine: Any) -> str:
    image = os.environ.get("HODEI_IMAGE", DEFAULT_IMAGE)
    try:
        docker_engine.images.get(image)
    except Exception:
        pytest.fail(f"image {image} is missing: run .ci/containers-prepare.sh first")
    return image


@pytest.fixture(scope="session")
def postgres_image(docker_engine: Any) -> str:
    try:
        docker_engine.images.get(LOCAL_POSTGRES_IMAGE)
    except Exception:
        return OFFICIAL_POSTGRES_IMAGE
    return LOCAL_POSTGRES_IMAGE
