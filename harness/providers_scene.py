"""The @providers scenarios: workers provisioned on demand by the Docker provider, for
the containers launcher. One function per step sentence.

The scene starts one more server container on the run's database, with a
providers.yaml of one Docker provider (the run's image, or a missing one) and the
Docker socket, so that it starts worker containers itself. Its provider's tags are a
pool of the scenario's own: only its jobs select them, and only its workers match
them, so the run's other servers and workers never take part. Other launchers skip:
the local one has no image to start, a live deployment is not ours to change.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pytest
import yaml

from harness.expect import expect
from harness.waits import wait_for

if TYPE_CHECKING:
    from harness.context import E2EContext
    from harness.driver import JobView


class World(Protocol):
    """What the scene needs of the scenario's world (harness.world.World), named here
    so that this module does not import the world that imports it."""

    ctx: E2EContext
    job: JobView | None
    job_ids: list[str]
    providers: ProvidersScene | None

    def job_reaches(self, state: str, timeout_s: float = ...) -> None: ...


DOCKER_SOCKET = "/var/run/docker.sock"
#: A provisioned container's start, the worker's registration and a `true` job.
PROVISION_WAIT_S = 90.0
#: The provider's idle TTL here, and the wait for its container to be gone after it.
IDLE_TTL_S = 3
GONE_WAIT_S = 60.0
MISSING_IMAGE = "hodei/missing-e2e:none"


@dataclass
class ProvidersScene:
    provider: str
    pool: str
    address: str
    image: str
    engine: Any

    def containers(self) -> list[Any]:
        return list(
            self.engine.containers.list(
                all=True, filters={"label": [f"io.hodei.provider={self.provider}"]}
            )
        )

    def close(self) -> None:
        for container in self.containers():
            with contextlib.suppress(Exception):
                container.remove(force=True)


def _launcher(world: World) -> Any:
    ctx = world.ctx
    if ctx.mode != "containers":
        pytest.skip(
            f"the @providers scenarios start worker containers from a server container: "
            f"containers launcher only (this run: {ctx.mode})"
        )
    launcher = getattr(ctx, "_launcher", None)
    if launcher is None or getattr(launcher, "_client", None) is None:
        pytest.skip("Docker does not answer from this test process")
    if not os.path.exists(DOCKER_SOCKET):
        pytest.skip(f"no Docker socket at {DOCKER_SOCKET} to give the scaling server")
    return launcher


def start_scaling_server(world: World, missing_image: bool = False) -> None:
    """A server container whose scaler provisions Docker workers for a pool of this
    scenario's own."""
    launcher = _launcher(world)
    suffix = uuid.uuid4().hex[:8]
    provider = f"e2e-docker-{suffix}"
    image = MISSING_IMAGE if missing_image else launcher.options.image
    folder = world.ctx.run_dir / f"providers-{suffix}"
    folder.mkdir(parents=True)
    # Read by the image's user (uid 10001), not the harness's.
    folder.chmod(0o755)
    path = folder / "providers.yaml"
    entry = {
        "name": provider,
        "type": "docker",
        "image": image,
        "max_workers": 1,
        "idle_ttl": IDLE_TTL_S,
        "tags": {"pool": provider},
        "docker": {
            # Removed with the run's containers if the scenario stops half-way.
            "labels": {"org.hodei.e2e.run": launcher.run_id},
            # A TLS run: the workers dial with the run's CA (and client certificate),
            # mounted at the same path as on the host, as the launcher's own workers.
            "env": launcher.worker_tls_env(),
            "volumes": launcher.tls_volumes(),
        },
    }
    path.write_text(yaml.safe_dump({"providers": [entry]}), encoding="utf-8")
    path.chmod(0o644)
    _, address = launcher.start_server(
        world.ctx.deployment.database_url,
        name=f"scaler-{suffix}",
        env={
            "HODEI_PROVIDERS_FILE": f"/etc/hodei-providers/{path.name}",
            "HODEI_SCALER_INTERVAL": "0.2",
        },
        mounts={
            str(folder): ("/etc/hodei-providers", "ro"),
            DOCKER_SOCKET: (DOCKER_SOCKET, "rw"),
        },
        # The socket's group: the image's user may then speak to the daemon.
        group_add=[str(os.stat(DOCKER_SOCKET).st_gid)],
    )
    world.providers = ProvidersScene(provider, provider, address, image, launcher._client)


def _scene(world: World) -> ProvidersScene:
    assert world.providers is not None, "no scaling server was started in this scenario"
    return world.providers


def queue_for_pool(world: World, script: str) -> None:
    """A job only the scene's provisioned workers may run (its selector: their pool)."""
    scene = _scene(world)
    world.job = world.ctx.driver.queue(
        ["sh", "-c", script], name="e2e-provisioned", selector={"pool": scene.pool}
    )
    world.job_ids.append(world.job.id)


def job_succeeds_on_a_provisioned_worker(world: World) -> None:
    world.job_reaches("SUCCEEDED", timeout_s=PROVISION_WAIT_S)
    assert world.job is not None
    provider = world.ctx.tables.provisioned_by(world.job.worker_id)
    scene = _scene(world)
    expect(
        provider == scene.provider,
        "CHK_PROVISIONED_WORKER",
        "job {job} ran on worker {worker}, not on one provider {provider} started",
        job=world.job.id,
        worker=world.job.worker_id,
        provider=scene.provider,
    )


def container_gone_after_idle(world: World) -> None:
    scene = _scene(world)
    wait_for(
        f"the containers of provider {scene.provider} to be gone after the idle TTL",
        lambda: [c.name for c in scene.containers()],
        lambda names: not names,
        GONE_WAIT_S,
    )


def provisioning_failure_recorded(world: World) -> None:
    scene = _scene(world)
    errors = wait_for(
        f"a ProvisioningFailed event of provider {scene.provider}",
        lambda: world.ctx.tables.provisioning_errors(scene.provider),
        bool,
        PROVISION_WAIT_S,
    )
    expect(
        scene.image in errors[0],
        "CHK_PROVISIONING_ERROR",
        "the failure {error!r} does not name the image {image}",
        error=errors[0],
        image=scene.image,
    )


def diagnose_names_provisioning(world: World) -> None:
    """hodei-diagnose, on the run's database, names the failing provider and image."""
    import json
    import subprocess
    import sys

    scene = _scene(world)
    out = world.ctx.run_dir / f"diagnose-{scene.provider}.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hodei.diagnose.cli",
            "--database-url",
            world.ctx.deployment.database_url,
            "--only",
            "providers",
            "--format",
            "json",
            "--output",
            str(out),
        ],
        env={k: v for k, v in os.environ.items() if not k.startswith("HODEI_")},
        capture_output=True,
        timeout=120,
        check=False,
    )
    report = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    check: dict[str, Any] = next(
        (c for c in report.get("checks", []) if c.get("id") == "providers.provisioning"), {}
    )
    expect(
        check.get("status") == "FAIL" and scene.image in str(check.get("observed", "")),
        "CHK_DIAGNOSE_PROVISIONING",
        "hodei-diagnose did not name the failing provider: {check}",
        check=check or report.get("error", "no report"),
    )
