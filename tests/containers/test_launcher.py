"""The `containers` launcher against a real Docker engine: endpoints, a job end to end,
a worker container killed and replaced, logs kept, every container removed at stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from harness.driver import Driver
from harness.launchers.base import server_health
from harness.launchers.containers import (
    RUN_LABEL,
    ContainersLauncher,
    ContainersOptions,
)
from harness.launchers.docker_images import DockerUnavailable
from harness.waits import wait_for, wait_until

pytestmark = pytest.mark.integration


def test_unreachable_docker_is_a_skip_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    launcher = ContainersLauncher(ContainersOptions(run_dir=tmp_path))
    with pytest.raises(DockerUnavailable, match="no Docker engine reachable") as info:
        launcher.start()
    assert getattr(info.value, "skip", False) is True


def test_platform_in_containers(
    docker_engine: Any, hodei_image: str, postgres_image: str, tmp_path: Path
) -> None:
    killed_name = ""
    launcher = ContainersLauncher(
        ContainersOptions(
            workers=2, slots=2, image=hodei_image, postgres_image=postgres_image, run_dir=tmp_path
        )
    )
    try:
        dep = launcher.start()
        assert dep.mode == "containers"
        assert dep.server_address.startswith("127.0.0.1:")
        # mTLS with the run's certificates: a plaintext client does not get in.
        assert server_health(dep.server_address, tls=dep.client_tls()) == "SERVING"
        with pytest.raises(grpc.RpcError):
            server_health(dep.server_address)
        roles = sorted(p.role for p in dep.processes)
        assert roles == ["database", "server", "worker", "worker"]
        assert all(p.container_id and p.pid for p in dep.processes)
        with psycopg.connect(dep.database_url, connect_timeout=5) as conn:
            workers = conn.execute("SELECT count(*) FROM workers WHERE state = 'READY'")
            assert workers.fetchone() == (2,)

        driver = Driver(dep.server_address, dep.client_tls(), dep.token)
        try:
            job = driver.queue(["sh", "-c", "echo inside; sleep 2; echo done"])
            wait_for(
                "the job to be RUNNING",
                lambda: driver.get(job.id).state,
                lambda s: s == "RUNNING",
                15.0,
            )
            holder = [w for w in driver.workers() if job.id in w.running_job_ids]
            assert len(holder) == 1
            launcher.kill_process(holder[0].pid)
            killed = next(p for p in dep.processes if p.pid == holder[0].pid)
            killed_name = killed.name
            state = docker_engine.containers.get(killed.container_id).attrs["State"]
            assert state["Status"] == "exited" and state["ExitCode"] == 137
            launcher.start_worker()
            final = wait_for(
                "the job to finish on the replacement worker",
                lambda: driver.get(job.id),
                lambda j: j.state == "SUCCEEDED",
                30.0,
                poll_s=0.2,
            )
            assert final.attempts == 2
            assert ("stdout", "done") in driver.get_logs(job.id)
        finally:
            driver.close()
        server_log = Path(launcher.log_dir / "server.log")
        # The follower thread writes as the container prints.
        wait_until(
            "the server log to show the job succeeded",
            lambda: "job succeeded" in server_log.read_text(),
            timeout_s=10,
        )
    finally:
        launcher.stop()
    assert (
        docker_engine.containers.list(all=True, filters={"label": f"{RUN_LABEL}={launcher.run_id}"})
        == []
    )
    logs = sorted(p.name for p in (tmp_path / "logs").glob("*.log"))
    assert logs == ["postgres.log", "server.log", "worker-1.log", "worker-2.log", "worker-3.log"]
    # the others were stopped gracefully (SIGTERM) and said so
    for name in {"worker-1", "worker-2", "worker-3"} - {killed_name}:
        assert "worker stopped" in (tmp_path / "logs" / f"{name}.log").read_text(), name
