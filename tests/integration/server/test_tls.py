"""TLS and mTLS end to end: a real server on a TLS port, the Python client, real worker
and CLI processes, with certificates made at run time (harness/certs.py). A mismatch
(plaintext against TLS, the wrong CA, no or a foreign client certificate) is refused
with one line that says what to set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harness.certs import TlsCerts
from harness.waits import wait_for_async
from hodei.client import NO_RETRY, ClientTLS, HodeiClient, JobView
from hodei.domain.jobs import JobState
from hodei.errors import Unavailable
from hodei.server.app import ServerApp
from tests.integration.cli_process import hodei as run_cli
from tests.integration.conftest import SpawnWorker
from tests.integration.tokens import server_token

pytestmark = pytest.mark.integration

StartServer = Callable[..., Awaitable[ServerApp]]


def _client(app: ServerApp, tls: ClientTLS | None) -> HodeiClient:
    return HodeiClient(
        app.address,
        deadline=5.0,
        submit_retry=NO_RETRY,
        tls=tls,
        token=server_token(app.address),
    )


async def _run_job(client: HodeiClient, name: str) -> JobView:
    job = await client.queue_job(["/bin/sh", "-c", "echo over-tls"], name=name)
    return await wait_for_async(
        f"job {job.id} to succeed",
        lambda: client.get_job(job.id),
        lambda j: j.state == JobState.SUCCEEDED,
        timeout_s=30,
        describe=lambda j: j.state,
    )


async def test_a_worker_runs_a_job_over_tls(
    start_server: StartServer, spawn_worker: SpawnWorker, tls_certs: TlsCerts
) -> None:
    app = await start_server(tls=tls_certs.server())
    await spawn_worker(app.address, tls=tls_certs.client())
    async with _client(app, ClientTLS.from_files(tls_certs.ca)) as client:
        job = await _run_job(client, "tls")
        lines = [line.line for line in (await client.get_logs(job.id)).lines]
    assert "over-tls" in lines


async def test_the_server_name_override_verifies_a_name_in_the_certificate(
    start_server: StartServer, tls_certs: TlsCerts
) -> None:
    app = await start_server(tls=tls_certs.server())
    good = ClientTLS.from_files(tls_certs.ca, server_name="localhost")
    async with _client(app, good) as client:
        assert await client.health() == "SERVING"
    wrong = ClientTLS.from_files(tls_certs.ca, server_name="hodei.example")
    async with _client(app, wrong) as client:
        with pytest.raises(Unavailable) as caught:
            await client.health()
    assert str(caught.value) == (
        f"the certificate of the server at {app.address} is not for 'hodei.example'; "
        "set HODEI_TLS_SERVER_NAME to a name it holds"
    )


@pytest.mark.parametrize(
    "server_tls,client_tls,message",
    [
        (
            "tls",
            None,
            "the server at {address} speaks TLS; set HODEI_TLS_CA (--tls-ca) to the CA that "
            "signed its certificate",
        ),
        (
            "plain",
            "ca",
            "the server at {address} does not speak TLS; unset HODEI_TLS_CA, or give the "
            "server HODEI_TLS_CERT and HODEI_TLS_KEY",
        ),
        (
            "tls",
            "other-ca",
            "the certificate of the server at {address} is not signed by the CA in "
            "HODEI_TLS_CA (or has expired)",
        ),
    ],
)
async def test_a_mismatch_is_one_line_saying_what_to_set(
    start_server: StartServer,
    tls_certs: TlsCerts,
    server_tls: str,
    client_tls: str | None,
    message: str,
) -> None:
    app = await start_server(tls=tls_certs.server() if server_tls == "tls" else {})
    tls = {
        None: None,
        "ca": ClientTLS.from_files(tls_certs.ca),
        "other-ca": ClientTLS.from_files(tls_certs.other_ca),
    }[client_tls]
    async with _client(app, tls) as client:
        with pytest.raises(Unavailable) as caught:
            await client.health()
    assert str(caught.value) == message.format(address=app.address)


async def test_a_submission_is_not_retried_on_a_handshake_failure(
    start_server: StartServer, tls_certs: TlsCerts
) -> None:
    app = await start_server(tls=tls_certs.server())
    # The default policy retries UNAVAILABLE for 30 s; a wrong CA cannot get better.
    async with HodeiClient(
        app.address, deadline=5.0, tls=ClientTLS.from_files(tls_certs.other_ca)
    ) as client:
        with pytest.raises(Unavailable, match="is not signed by the CA") as caught:
            await client.queue_job(["true"])
    assert "gave up after" not in str(caught.value)


async def test_mtls_admits_only_a_certificate_from_its_ca(
    start_server: StartServer, tls_certs: TlsCerts
) -> None:
    app = await start_server(tls=tls_certs.server(mtls=True))
    good = ClientTLS.from_files(tls_certs.ca, tls_certs.client_cert, tls_certs.client_key)
    async with _client(app, good) as client:
        assert await client.health() == "SERVING"

    foreign = ClientTLS.from_files(
        tls_certs.ca, tls_certs.other_client_cert, tls_certs.other_client_key
    )
    async with _client(app, foreign) as client:
        with pytest.raises(Unavailable) as caught:
            await client.health()
    assert str(caught.value) == (
        f"the server at {app.address} refused the TLS connection: is the client "
        "certificate (HODEI_TLS_CLIENT_CERT) signed by the server's HODEI_TLS_CLIENT_CA?"
    )

    async with _client(app, ClientTLS.from_files(tls_certs.ca)) as client:
        with pytest.raises(Unavailable) as caught:
            await client.health()
    assert str(caught.value) == (
        f"the server at {app.address} closed the TLS connection: it may require a client "
        "certificate (set HODEI_TLS_CLIENT_CERT and HODEI_TLS_CLIENT_KEY)"
    )


async def test_a_worker_over_mtls_runs_a_job(
    start_server: StartServer, spawn_worker: SpawnWorker, tls_certs: TlsCerts
) -> None:
    app = await start_server(tls=tls_certs.server(mtls=True))
    await spawn_worker(app.address, tls=tls_certs.client("good"))
    good = ClientTLS.from_files(tls_certs.ca, tls_certs.client_cert, tls_certs.client_key)
    async with _client(app, good) as client:
        await _run_job(client, "mtls")


async def test_a_worker_with_a_foreign_certificate_says_why_it_cannot_connect(
    start_server: StartServer, spawn_worker: SpawnWorker, tls_certs: TlsCerts
) -> None:
    app = await start_server(tls=tls_certs.server(mtls=True))
    worker = await spawn_worker(app.address, wait_ready=False, tls=tls_certs.client("other"))
    await worker.wait_log(r"refused the TLS connection: is the client certificate", seconds=20)
    assert worker.proc.poll() is None  # it keeps trying: the server may be reconfigured


def _cli_env(tls: dict[str, Any]) -> dict[str, str]:
    from hodei.settings import environment_for

    return environment_for({"tls": tls})


async def test_the_cli_over_mtls_and_its_one_line_errors(
    start_server: StartServer, tls_certs: TlsCerts
) -> None:
    app = await start_server(tls=tls_certs.server(mtls=True))
    ok = await run_cli(
        "job", "submit", "--", "true", server=app.address, env=_cli_env(tls_certs.client("good"))
    )
    assert ok.returncode == 0, ok

    refused = await run_cli("job", "list", server=app.address, env=_cli_env(tls_certs.client()))
    assert refused.returncode == 3, refused
    assert refused.stderr.strip().splitlines() == [
        f"hodei: error: the server at {app.address} closed the TLS connection: it may require "
        "a client certificate (set HODEI_TLS_CLIENT_CERT and HODEI_TLS_CLIENT_KEY)"
    ]

    plain = await run_cli("job", "list", server=app.address)
    assert plain.returncode == 3, plain
    assert "speaks TLS; set HODEI_TLS_CA" in plain.stderr

    bad_file = await run_cli("job", "list", "--tls-ca", "/nonexistent/ca.pem", server=app.address)
    assert bad_file.returncode == 2, bad_file
    assert bad_file.stderr.strip().splitlines() == [
        "hodei: error: HODEI_TLS_CA: cannot read /nonexistent/ca.pem: No such file or directory"
    ]
