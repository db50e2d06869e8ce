"""The `docker` provider: a worker per container, on the Docker Engine API through the
`docker` package (pip install 'hodei[docker]'), never the CLI.

The container runs the project's image (`hodei worker --server ADDRESS --name NAME
--slots N`, the image's entrypoint being `hodei`) with the worker's single-use token in
its environment, host networking by default, and io.hodei.* labels by which the
provider lists its containers again. It is removed when the worker ends (auto-remove),
and stopped (SIGTERM: the worker drains) then removed when it is scaled down.

The image must already be on the daemon: the provider never pulls (the machines here
reach no registry; elsewhere, pull it once, or point `image` at your registry's copy and
pull it in your deployment). A missing image is a ProvisioningError naming it.
Blocking client calls run in a thread (asyncio.to_thread).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import importlib
import logging
import re
import time
from datetime import datetime
from typing import Any

from hodei.providers.base import (
    LABEL_JOB,
    LABEL_MANAGED,
    LABEL_PROVIDER,
    LABEL_WORKER_NAME,
    ProviderHealth,
    ProvisionedState,
    ProvisionedWorker,
    ProvisioningError,
    ProvisionRequest,
)
from hodei.providers.config import ProviderConfig

logger = logging.getLogger(__name__)

#: Seconds between SIGTERM and SIGKILL when a worker is stopped (it drains first).
_STOP_TIMEOUT = 15
#: A container that is gone or exited this soon after its start did not start.
_EARLY_EXIT = 0.5
_STATES = {
    "created": ProvisionedState.STARTING,
    "restarting": ProvisionedState.STARTING,
    "running": ProvisionedState.RUNNING,
    "paused": ProvisionedState.RUNNING,
    "removing": ProvisionedState.EXITED,
    "exited": ProvisionedState.EXITED,
    "dead": ProvisionedState.EXITED,
}
_QUANTITY = re.compile(r"^([0-9.]+)\s*([KMGT]i?|[kmgt]|)$")
_FACTORS = {
    "": 1,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("512Mi", "1G", "1000000") in bytes."""
    match = _QUANTITY.match(quantity.strip())
    if match is None:
        raise ValueError(f"memory {quantity!r} is not a quantity like 512Mi or 1G")
    number, unit = match.groups()
    return int(float(number) * _FACTORS[unit if unit in _FACTORS else unit.upper()])


def nano_cpus(quantity: str) -> int:
    """A CPU quantity ("250m", "1.5", "2") in the Engine API's billionths of a CPU."""
    text = quantity.strip()
    try:
        cores = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise ValueError(f"cpu {quantity!r} is not a quantity like 250m or 1.5") from None
    return int(cores * 1e9)


def _errors() -> Any:
    """docker.errors (imported on first use: the [docker] extra is optional)."""
    try:
        return importlib.import_module("docker.errors")
    except ImportError:
        raise ProvisioningError(
            "the docker provider needs the docker package: pip install 'hodei[docker]'"
        ) from None


def _one_line(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class DockerProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.name = config.name
        self.config = config
        self._client: Any = None  # docker.DockerClient, made on first use
        # Checked now: a bad quantity is a configuration error, not a failing provider.
        self.host_config = self._resources()

    # ---- what a container is made of (no I/O: tested as is) -----------------------

    def _resources(self) -> dict[str, Any]:
        resources = self.config.resources
        options: dict[str, Any] = {}
        if resources.limits.memory:
            options["mem_limit"] = memory_bytes(resources.limits.memory)
        if resources.requests.memory:
            options["mem_reservation"] = memory_bytes(resources.requests.memory)
        if resources.limits.cpu:
            options["nano_cpus"] = nano_cpus(resources.limits.cpu)
        return options

    def command(self, request: ProvisionRequest) -> list[str]:
        return [
            "worker",
            "--server",
            request.server_address,
            "--name",
            request.worker_name,
            "--slots",
            str(request.slots),
        ]

    def environment(self, request: ProvisionRequest) -> dict[str, str]:
        env = {
            # Several workers share the host's network: any free /metrics port each.
            "HODEI_WORKER_METRICS_PORT": "0",
            **self.config.docker.env,
            **request.env,
            "HODEI_WORKER_LABELS": ",".join(f"{k}={v}" for k, v in request.labels.items()),
        }
        if request.token:
            env["HODEI_TOKEN"] = request.token
        return env

    def labels(self, request: ProvisionRequest) -> dict[str, str]:
        return {
            LABEL_MANAGED: "true",
            LABEL_PROVIDER: self.name,
            LABEL_WORKER_NAME: request.worker_name,
            **({LABEL_JOB: str(request.job_id)} if request.job_id else {}),
        }

    def create_options(self, request: ProvisionRequest) -> dict[str, Any]:
        """The keyword arguments of containers.create() for this worker."""
        return {
            "image": self.config.image,
            "command": self.command(request),
            "name": request.worker_name,
            "environment": self.environment(request),
            "labels": self.labels(request),
            "network_mode": self.config.docker.network_mode,
            "auto_remove": self.config.docker.auto_remove,
            "detach": True,
            **self.host_config,
        }

    # ---- the Engine API ------------------------------------------------------------

    def _docker(self) -> Any:
        if self._client is None:
            try:
                # By name: the repository's docker/ folder (Dockerfiles) shadows the
                # package for the type checker, never at run time (a regular package
                # wins over a namespace folder).
                docker = importlib.import_module("docker")
            except ImportError:
                raise ProvisioningError(
                    "the docker provider needs the docker package: pip install 'hodei[docker]'"
                ) from None
            base_url = self.config.docker.base_url
            self._client = (
                docker.DockerClient(base_url=base_url, timeout=30)
                if base_url
                else docker.from_env(timeout=30)
            )
        return self._client

    async def provision(self, request: ProvisionRequest) -> ProvisionedWorker:
        return await asyncio.to_thread(self._provision, request)

    def _provision(self, request: ProvisionRequest) -> ProvisionedWorker:
        errors = _errors()

        try:
            client = self._docker()
            try:
                client.images.get(self.config.image)
            except errors.ImageNotFound:
                raise ProvisioningError(
                    f"image {self.config.image!r} not found on the Docker daemon"
                ) from None
            container = client.containers.create(**self.create_options(request))
            container.start()
        except ProvisioningError:
            raise
        except errors.DockerException as exc:
            raise ProvisioningError(f"docker: {_one_line(exc)}") from None
        except Exception as exc:  # requests' connection errors and the like
            raise ProvisioningError(f"cannot reach the Docker daemon: {_one_line(exc)}") from None
        time.sleep(_EARLY_EXIT)
        try:
            container.reload()
        except errors.NotFound:
            raise ProvisioningError(
                f"container {request.worker_name} exited at once (auto-removed)"
            ) from None
        if container.status in ("exited", "dead"):
            code = container.attrs.get("State", {}).get("ExitCode")
            tail = container.logs(tail=3).decode(errors="replace").strip().splitlines()
            with contextlib.suppress(errors.DockerException):
                container.remove(force=True)
            raise ProvisioningError(
                f"container {request.worker_name} exited at once with code {code}"
                + (f": {tail[-1]}" if tail else "")
            )
        logger.info(
            "worker container started",
            extra={
                "provider": self.name,
                "container": container.short_id,
                "worker_name": request.worker_name,
            },
        )
        return self._worker(container)

    def _worker(self, container: Any) -> ProvisionedWorker:
        created = container.attrs.get("Created", "")
        try:
            created_at = datetime.fromisoformat(created[:26] + "+00:00") if created else None
        except ValueError:
            created_at = None
        labels = dict(container.labels or {})
        return ProvisionedWorker(
            provider=self.name,
            handle=container.id,
            worker_name=labels.get(LABEL_WORKER_NAME, container.name),
            state=_STATES.get(container.status, ProvisionedState.UNKNOWN),
            created_at=created_at,
            labels=labels,
        )

    async def terminate(self, handle: str) -> None:
        await asyncio.to_thread(self._terminate, handle)

    def _terminate(self, handle: str) -> None:
        errors = _errors()

        try:
            container = self._docker().containers.get(handle)
        except errors.NotFound:
            return
        with contextlib.suppress(errors.NotFound):
            container.stop(timeout=_STOP_TIMEOUT)
        with contextlib.suppress(errors.NotFound, errors.APIError):
            # auto_remove removes it once stopped; "removal already in progress" is fine.
            container.remove(force=True)

    async def list(self) -> list[ProvisionedWorker]:
        return await asyncio.to_thread(self._list)

    def _list(self) -> builtins.list[ProvisionedWorker]:
        containers = self._docker().containers.list(
            all=True, filters={"label": [f"{LABEL_PROVIDER}={self.name}"]}
        )
        return [self._worker(c) for c in containers]

    async def health(self) -> ProviderHealth:
        return await asyncio.to_thread(self._health)

    def _health(self) -> ProviderHealth:
        try:
            client = self._docker()
            client.ping()
            version = client.version().get("Version", "?")
        except Exception as exc:
            return ProviderHealth(False, f"cannot reach the Docker daemon: {_one_line(exc)}")
        return ProviderHealth(True, f"docker {version} reachable")

    async def capacity(self) -> int:
        running = [w for w in await self.list() if w.state != ProvisionedState.EXITED]
        return max(self.config.max_workers - len(running), 0)

    async def close(self) -> None:
        """Containers outlive the server (another replica, or this one restarted, finds
        them by label); only the client is closed."""
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(client.close)
