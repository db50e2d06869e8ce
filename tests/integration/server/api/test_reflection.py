"""Server reflection v1 and v1alpha, each asked by a client in its own process: the
services are listed and the file declaring JobExecutionService is resolved."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

StartServer = Callable[..., Awaitable[Any]]

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
SERVICES = {
    "hodei.api.v1.JobExecutionService",
    "hodei.api.v1.LogStreamService",
    "hodei.api.v1.WorkerAgentService",
    "hodei.api.v1.PlatformService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}


@pytest.fixture(scope="module")
def v1_stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """grpc-proto's reflection v1, compiled for the client process alone."""
    out = tmp_path_factory.mktemp("reflection_v1")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{HERE / 'reflection_v1'}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            "reflection.proto",
        ],
        check=True,
    )
    return out


async def ask(address: str, version: str, path: Path | None = None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(path or "")}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(HERE / "reflection_client.py"), address, version],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_reflection_lists_and_resolves(
    start_server: StartServer, v1_stubs: Path, version: str
) -> None:
    app = await start_server(dispatcher={"enabled": False})
    found = await ask(app.address, version, v1_stubs if version == "v1" else None)
    assert set(found["services"]) >= SERVICES
    assert "hodei/api/v1/jobs.proto" in found["files"]
    assert {"QueueJob", "GetJob", "CancelJob"} <= set(found["methods"])
    if version == "v1":
        assert found["missing_code"] == 5  # NOT_FOUND, in the v1 error message
        # A client describing the reflection service itself (grpcurl `describe`).
        assert found["itself"] == [
            "grpc/reflection/v1/reflection.proto",
            "grpc.reflection.v1",
            ".grpc.reflection.v1.ServerReflectionRequest",
        ]
