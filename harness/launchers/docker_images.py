"""The Docker engine and the images the containers launcher runs: the client (or why
there is none), the project image built when missing, the PostgreSQL image to use."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from harness.launchers.base import LaunchError

logger = logging.getLogger(__name__)

#: The project image (./Dockerfile); .ci/containers-prepare.sh builds it.
DEFAULT_IMAGE = "hodei/hodei:dev"
#: PostgreSQL built from Debian's packages by .ci/containers-prepare.sh (no registry).
LOCAL_POSTGRES_IMAGE = "hodei/postgres:15"
#: The official image, pulled when the local one does not exist.
OFFICIAL_POSTGRES_IMAGE = "postgres:16"
#: Base image for building the project image where no registry is reachable.
LOCAL_PYTHON_BASE = "hodei/python-base:3.11-bookworm"

REPO_ROOT = Path(__file__).resolve().parents[2]


class DockerUnavailable(LaunchError):
    """No Docker engine answers: the container scenarios cannot run here.

    `skip = True` tells the harness to skip (never pass) the scenarios with this reason.
    """

    skip = True


def docker_client() -> Any:
    """A client to a Docker engine that answers, or DockerUnavailable saying why not."""
    try:
        docker = docker_sdk()
    except ImportError as exc:  # pragma: no cover - testcontainers depends on docker
        raise DockerUnavailable(f"the docker Python package is missing: {exc}") from None
    try:
        client = docker.from_env(timeout=15)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailable(
            f"no Docker engine reachable ({first_line(exc)}); the containers launcher "
            "needs one (as root: .ci/containers-prepare.sh starts dockerd)"
        ) from None
    return client


def docker_sdk() -> Any:
    # The Docker SDK (a testcontainers dependency), imported by name at run time: the
    # repository's own docker/ folder (Dockerfiles) would otherwise shadow the `docker`
    # package for ruff's and mypy's module resolution.
    docker = importlib.import_module("docker")
    importlib.import_module("docker.errors")
    return docker


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def image_exists(client: Any, name: str) -> bool:
    try:
        client.images.get(name)
    except docker_sdk().errors.ImageNotFound:
        return False
    return True


def ensure_project_image(
    client: Any, image: str, base_image: str | None, build_missing: bool
) -> None:
    """Build the project image from ./Dockerfile and .ci/wheelhouse when it is missing
    (with the local Debian python base when no base is given and that one exists)."""
    if image_exists(client, image):
        return
    wheelhouse = REPO_ROOT / ".ci" / "wheelhouse"
    if not build_missing or not (REPO_ROOT / "Dockerfile").exists():
        raise LaunchError(
            f"image {image} not found; build it with .ci/containers-prepare.sh "
            "or `docker build -t hodei/hodei:dev .` (docs/containers.md)"
        )
    if not any(wheelhouse.glob("hodei-*.whl")):
        raise LaunchError(
            f"image {image} not found and {wheelhouse} holds no hodei wheel; "
            "run `pip wheel --wheel-dir .ci/wheelhouse .` first"
        )
    base = base_image
    if base is None and image_exists(client, LOCAL_PYTHON_BASE):
        base = LOCAL_PYTHON_BASE
    buildargs = {"BASE_IMAGE": base} if base else {}
    logger.info("building %s from %s (%s)", image, REPO_ROOT, buildargs or "default base")
    try:
        client.images.build(
            path=str(REPO_ROOT), tag=image, buildargs=buildargs, network_mode="host", rm=True
        )
    except docker_sdk().errors.BuildError as exc:
        tail = " | ".join(str(c.get("stream", "")).strip() for c in list(exc.build_log)[-5:])
        raise LaunchError(f"docker build of {image} failed: {exc.msg}; {tail}") from None


def postgres_image(client: Any, chosen: str | None) -> str:
    """`chosen`, else the local hodei/postgres:15 if it exists, else the official image."""
    if chosen:
        return chosen
    if image_exists(client, LOCAL_POSTGRES_IMAGE):
        return LOCAL_POSTGRES_IMAGE
    return OFFICIAL_POSTGRES_IMAGE
