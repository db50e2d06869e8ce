"""docker-compose.e2e.yml for real: `docker compose up` with host networking (the CI
way, docker-compose.e2e.host.yml), on its own bridge network with published ports (the
default), and with host networking and mTLS (docker-compose.e2e.tls.yml, certificates
made for the test), then the host's `hodei` and `hodei-diagnose` against it, then
`down`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness.launchers.base import free_port

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.integration


def _script(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}")
    return str(path)


@pytest.fixture(params=["host", "bridge", "host-tls"])
def compose_platform(
    request: pytest.FixtureRequest,
    docker_engine: Any,
    hodei_image: str,
    postgres_image: str,
    tmp_path: Path,
) -> Any:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI")
    version = subprocess.run(
        ["docker", "compose", "version", "--short"], capture_output=True, text=True, timeout=30
    )
    if version.returncode != 0:
        pytest.skip("docker compose v2 is not installed (.ci/containers-prepare.sh installs it)")
    pg_port, server_port = free_port(), free_port()
    env = {
        **os.environ,
        "HODEI_IMAGE": hodei_image,
        "HODEI_POSTGRES_IMAGE": postgres_image,
        "HODEI_E2E_PG_PORT": str(pg_port),
        "HODEI_E2E_SERVER_PORT": str(server_port),
        "HODEI_WORKERS": "2",
        "HODEI_POSTGRES_PASSWORD": "compose-secret",
    }
    base = [
        "docker",
        "compose",
        "-p",
        f"hodei-e2e-test-{uuid.uuid4().hex[:8]}",
        "-f",
        str(ROOT / "docker-compose.e2e.yml"),
    ]
    if request.param.startswith("host"):
        base += ["-f", str(ROOT / "docker-compose.e2e.host.yml")]
    tls: dict[str, str] = {}
    if request.param.endswith("tls"):
        from harness.certs import make_certs

        certs = make_certs(tmp_path / "tls", ("server",))
        for path in [certs.ca.parent, *certs.ca.parent.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)  # the image's uid 10001 reads
        env["HODEI_E2E_TLS_DIR"] = str(certs.ca.parent)
        base += ["-f", str(ROOT / "docker-compose.e2e.tls.yml")]
        tls = {
            "HODEI_TLS_CA": str(certs.ca),
            "HODEI_TLS_CLIENT_CERT": str(certs.client_cert),
            "HODEI_TLS_CLIENT_KEY": str(certs.client_key),
        }
    up = subprocess.run(
        [*base, "up", "-d", "--wait", "--wait-timeout", "120"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    try:
        if up.returncode != 0:
            logs = subprocess.run(
                [*base, "logs", "--no-color", "--tail", "20"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
            pytest.fail(f"docker compose up failed: {up.stderr.strip()[-1500:]}\n{logs}")
        yield {
            "server": f"127.0.0.1:{server_port}",
            "database_url": f"postgresql://hodei:compose-secret@127.0.0.1:{pg_port}/hodei",
            "compose": base,
            "env": env,
            "tls": tls,
        }
    finally:
        subprocess.run(
            [*base, "down", "-v", "--timeout", "10"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def test_compose_platform_serves_the_host_cli(compose_platform: dict[str, Any]) -> None:
    base, env = compose_platform["compose"], compose_platform["env"]
    ps = subprocess.run(
        [*base, "ps", "-a", "--format", "{{.Service}} {{.State}} {{.Health}}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.splitlines()
    states = sorted(line.strip() for line in ps)
    assert "server running healthy" in states, states
    assert states.count("worker running healthy") == 2, states
    assert "migrate exited" in states, states  # the one-shot migrations service ran and ended
    assert "tokens exited" in states, states  # and the one that made the tokens

    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
    cli_env["HODEI_SERVER_ADDRESS"] = compose_platform["server"]
    if compose_platform["tls"]:
        # mTLS: a client without a certificate is refused before any token is looked at.
        plain = subprocess.run(
            [_script("hodei"), "queue"], env=cli_env, capture_output=True, text=True, timeout=60
        )
        assert plain.returncode == 3 and "speaks TLS" in plain.stderr, plain.stderr
        cli_env |= compose_platform["tls"]
    refused = subprocess.run(
        [_script("hodei"), "queue"], env=cli_env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 6, refused.stderr  # tokens on: none given, refused
    admin = subprocess.run(
        [*base, "run", "--rm", "--no-deps", "--entrypoint", "cat", "tokens", "/tokens/admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert admin.returncode == 0 and admin.stdout.startswith("hodei_"), admin.stderr
    cli_env["HODEI_TOKEN"] = admin.stdout.strip()
    run = subprocess.run(
        [_script("hodei"), "job", "run", "--", "sh", "-c", "echo hi"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["hi"], run.stdout

    diagnose = subprocess.run(
        [
            _script("hodei-diagnose"),
            "--database-url",
            compose_platform["database_url"],
            "--server",
            compose_platform["server"],
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert diagnose.returncode == 0, diagnose.stdout + diagnose.stderr
    assert "compose-secret" not in diagnose.stdout  # passwords are redacted
