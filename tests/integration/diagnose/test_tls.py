"""hodei-diagnose against a server on a TLS port: the server checks pass with the CA
(and a client certificate under mTLS), and without it the report names the cause."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import pytest

from harness.certs import TlsCerts
from hodei.server.app import ServerApp
from hodei.settings import environment_for
from tests.integration.diagnose.conftest import WorkerProc
from tests.integration.diagnose.deployments import wait_ready_workers

pytestmark = pytest.mark.integration


async def diagnose(*args: str, token: str = "") -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hodei.diagnose.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin", **({"HODEI_TOKEN": token} if token else {})},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return int(proc.returncode or 0), out.decode()


async def test_diagnose_over_mtls_with_the_canary(
    start_server: Callable[..., Awaitable[ServerApp]],
    spawn_worker: Callable[..., WorkerProc],
    tls_certs: TlsCerts,
    db_url: str,
    diag_tokens: dict[str, str],
) -> None:
    app = await start_server(tls=tls_certs.server(mtls=True))
    spawn_worker(app.address, env=environment_for({"tls": tls_certs.client("good")}))
    await wait_ready_workers(db_url, 1)
    flags = ["--server", app.address, "--database-url", db_url]
    code, out = await diagnose(
        *flags,
        "--only",
        "server.health,canary.lifecycle,canary.logs",
        "--canary",
        "--tls-ca",
        str(tls_certs.ca),
        "--tls-client-cert",
        str(tls_certs.client_cert),
        "--tls-client-key",
        str(tls_certs.client_key),
        token=diag_tokens["client"],
    )
    assert code == 0, out
    assert "Traceback" not in out

    code, out = await diagnose(*flags, "--only", "server.health")
    assert code == 3, out
    assert f"the server at {app.address} speaks TLS; set HODEI_TLS_CA" in out


async def test_a_wrong_tls_file_is_one_line_and_exit_3(tls_certs: TlsCerts) -> None:
    code, out = await diagnose("--server", "127.0.0.1:1", "--tls-ca", "/nonexistent/ca.pem")
    assert code == 3, out
    assert out.strip().splitlines() == [
        "hodei-diagnose: error: HODEI_TLS_CA: cannot read /nonexistent/ca.pem: "
        "No such file or directory"
    ]
