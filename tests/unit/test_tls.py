"""hodei.tls and the tls settings: a wrong file, a missing half of a pair or a key that
is not its certificate's is one line naming the setting, at start, before any
connection; the server and the worker exit 2 with it and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.certs import TlsCerts
from hodei.errors import ConfigError
from hodei.settings import load_settings
from hodei.tls import ClientTLS, client_tls, server_credentials, speaks_tls

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "tls,message",
    [
        ({"cert": "/c.pem"}, "HODEI_TLS_CERT is set without HODEI_TLS_KEY"),
        ({"key": "/k.pem"}, "HODEI_TLS_KEY is set without HODEI_TLS_CERT"),
        ({"client_ca": "/ca.pem"}, "HODEI_TLS_CLIENT_CA (mTLS) needs TLS on the server"),
        ({"ca": "/ca.pem", "client_cert": "/c.pem"}, "HODEI_TLS_CLIENT_CERT is set without"),
        ({"client_cert": "/c", "client_key": "/k"}, "(mTLS) needs TLS on the client"),
        ({"server_name": "hodei"}, "HODEI_TLS_SERVER_NAME is used only with TLS"),
    ],
)
def test_half_a_pair_is_refused_naming_both_variables(tls: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tls=tls)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_empty_variables_mean_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HODEI_TLS_CA", "")
    monkeypatch.setenv("HODEI_TLS_CERT", "")
    settings = load_settings()
    assert client_tls(settings.tls) is None
    assert server_credentials(settings.tls) is None


def test_good_files_give_credentials(tls_certs: TlsCerts) -> None:
    settings = load_settings(tls={**tls_certs.server(mtls=True), **tls_certs.client("good")})
    assert server_credentials(settings.tls) is not None
    tls = client_tls(settings.tls)
    assert tls is not None and tls.cert is not None
    assert "PRIVATE" not in repr(tls)  # the key never reaches a log line


def _error(**tls: str) -> str:
    settings = load_settings(tls=tls)
    with pytest.raises(ConfigError) as caught:
        server_credentials(settings.tls)
        client_tls(settings.tls)
    text = str(caught.value)
    assert "\n" not in text
    return text


def test_missing_file_names_the_variable_and_the_path(tls_certs: TlsCerts) -> None:
    text = _error(cert="/nonexistent/server.pem", key=str(tls_certs.server_key))
    assert text == "HODEI_TLS_CERT: cannot read /nonexistent/server.pem: No such file or directory"
    text = _error(ca="/nonexistent/ca.pem")
    assert text.startswith("HODEI_TLS_CA: cannot read /nonexistent/ca.pem")


def test_a_file_that_is_not_pem_is_refused(tls_certs: TlsCerts, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    assert "HODEI_TLS_CA: " in _error(ca=str(junk))
    assert "is not a PEM file" in _error(ca=str(junk))
    big = tmp_path / "big.pem"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    assert "larger than" in _error(ca=str(big))


def test_a_key_that_is_not_the_certificates_is_refused(tls_certs: TlsCerts) -> None:
    text = _error(cert=str(tls_certs.server_cert), key=str(tls_certs.client_key))
    assert text.startswith("HODEI_TLS_CERT: ")
    assert "do not go together" in text


def test_a_certificate_is_not_a_ca_file(tls_certs: TlsCerts) -> None:
    # A private key where the CA should be: no certificate in it.
    text = _error(ca=str(tls_certs.client_key))
    assert text.startswith("HODEI_TLS_CA: ")


def test_client_tls_from_files(tls_certs: TlsCerts) -> None:
    tls = ClientTLS.from_files(tls_certs.ca, tls_certs.client_cert, tls_certs.client_key)
    assert tls.cert is not None and tls.key is not None
    with pytest.raises(ConfigError, match="needs its key"):
        ClientTLS.from_files(tls_certs.ca, tls_certs.client_cert)


def test_speaks_tls_is_false_where_nothing_listens() -> None:
    assert speaks_tls("127.0.0.1:1", timeout_s=0.5) is False


@pytest.mark.parametrize(
    "module,args,variable",
    [
        (
            "hodei.server",
            ["--tls-cert", "/nonexistent.pem", "--tls-key", "/x.key"],
            "HODEI_TLS_CERT",
        ),
        ("hodei.server", ["--tls-cert", "/nonexistent.pem"], "HODEI_TLS_KEY"),
        ("hodei.worker", ["--tls-ca", "/nonexistent/ca.pem"], "HODEI_TLS_CA"),
    ],
)
def test_programs_exit_2_with_one_line(module: str, args: list[str], variable: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PATH": "/usr/bin", "HODEI_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"},
    )
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert variable in lines[0]
    assert "Traceback" not in out.stderr
