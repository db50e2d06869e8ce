"""TLS and mTLS on the gRPC port: the server's credentials and every client's channel.

The server speaks TLS when HODEI_TLS_CERT and HODEI_TLS_KEY are set, and also asks
for and verifies a client certificate when HODEI_TLS_CLIENT_CA is set. A client (CLI,
worker, hodei-diagnose, the harness) connects with TLS when HODEI_TLS_CA is set, and
shows HODEI_TLS_CLIENT_CERT/KEY when they are. The files are read and checked once,
when a program starts (a renewed certificate takes effect at the next restart), so a
wrong path or a key that does not match its certificate is one line at start-up, not
an opaque handshake failure later.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from hodei.errors import ConfigError
from hodei.settings import TlsSettings, setting_field

#: Far beyond any certificate chain or key; a bigger file is a wrong path, not a PEM.
MAX_PEM_BYTES = 1024 * 1024

ChannelOptions = Sequence[tuple[str, Any]]


@dataclass(frozen=True, repr=False)
class ClientTLS:
    """What a client needs to dial a TLS server: the CA it trusts, optionally its own
    certificate and key (mTLS) and the name to verify when the address is an IP."""

    ca: bytes
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str | None = None

    def __repr__(self) -> str:  # never the key's bytes in a log or a traceback
        mtls = ", client certificate" if self.cert else ""
        name = f", server name {self.server_name}" if self.server_name else ""
        return f"ClientTLS(CA{mtls}{name})"

    @classmethod
    def from_files(
        cls,
        ca: Path,
        cert: Path | None = None,
        key: Path | None = None,
        server_name: str | None = None,
    ) -> ClientTLS:
        """Read and check the PEM files (ConfigError naming the file when one is wrong)."""
        if (cert is None) != (key is None):
            raise ConfigError("a client certificate needs its key, and a key its certificate")
        ca_pem = _read_pem(ca, "the TLS CA")
        _check_ca(ca, "the TLS CA")
        if cert is not None and key is not None:
            _check_pair(cert, key, "the TLS client certificate")
            return cls(
                ca_pem,
                _read_pem(cert, "the TLS client certificate"),
                _read_pem(key, "the TLS client key"),
                server_name,
            )
        return cls(ca_pem, server_name=server_name)


def client_tls(settings: TlsSettings) -> ClientTLS | None:
    """The client side of the settings, read and checked; None: plaintext."""
    if settings.ca is None:
        return None
    ca = _read_pem(settings.ca, _env("ca"))
    _check_ca(settings.ca, _env("ca"))
    cert = key = None
    if settings.client_cert is not None and settings.client_key is not None:
        cert = _read_pem(settings.client_cert, _env("client_cert"))
        key = _read_pem(settings.client_key, _env("client_key"))
        _check_pair(settings.client_cert, settings.client_key, _env("client_cert"))
    return ClientTLS(ca, cert, key, settings.server_name)


def server_credentials(settings: TlsSettings) -> grpc.ServerCredentials | None:
    """The server's credentials; None: the port stays plaintext."""
    if settings.cert is None or settings.key is None:
        return None
    cert = _read_pem(settings.cert, _env("cert"))
    key = _read_pem(settings.key, _env("key"))
    _check_pair(settings.cert, settings.key, _env("cert"))
    client_ca = None
    if settings.client_ca is not None:
        client_ca = _read_pem(settings.client_ca, _env("client_ca"))
        _check_ca(settings.client_ca, _env("client_ca"))
    return grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def channel_credentials(tls: ClientTLS | None) -> grpc.ChannelCredentials | None:
    """A client's credentials; None: plaintext."""
    if tls is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
    )


def _with_name(options: ChannelOptions, tls: ClientTLS | None) -> list[tuple[str, Any]]:
    # The override is for certificates issued to a name when the address is an IP
    # (tests, a compose network); the name is still verified against the certificate.
    extra = [("grpc.ssl_target_name_override", tls.server_name)] if tls and tls.server_name else []
    return [*options, *extra]


def aio_channel(address: str, options: ChannelOptions, tls: ClientTLS | None) -> grpc.aio.Channel:
    """An asyncio channel to a Hodei server, TLS when `tls` is given."""
    credentials = channel_credentials(tls)
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(address, credentials, options=_with_name(options, tls))


def sync_channel(address: str, tls: ClientTLS | None, options: ChannelOptions = ()) -> grpc.Channel:
    """A blocking channel (health probes of the harness and the container image)."""
    credentials = channel_credentials(tls)
    if credentials is None:
        return grpc.insecure_channel(address, options=list(options))
    return grpc.secure_channel(address, credentials, options=_with_name(options, tls))


def _env(name: str) -> str:
    return setting_field(f"tls.{name}").env


def _read_pem(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PEM_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_PEM_BYTES:
        raise ConfigError(f"{what}: {path} is larger than {MAX_PEM_BYTES} bytes: not a PEM file")
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{what}: {path} is not a PEM file (no -----BEGIN line)")
    return data


def _check_ca(path: Path, what: str) -> None:
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"{what}: {path} holds no usable CA certificate ({_reason(exc)})"
        ) from None


def _check_pair(cert: Path, key: Path, what: str) -> None:
    """The key opens and matches the certificate (ssl checks both, as grpc would only at
    the first handshake)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # A password is given so that an encrypted key fails here instead of prompting.
        context.load_cert_chain(str(cert), str(key), password=b"")
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"{what}: {cert} and its key {key} do not go together or cannot be loaded "
            f"(an encrypted key is not supported) ({_reason(exc)})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {cert} or {key}: {exc.strerror or exc}") from None


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc).splitlines()[0].lower()


def speaks_tls(address: str, timeout_s: float = 1.0) -> bool:
    """Whether the peer at HOST:PORT answers a TLS ClientHello: how a plaintext client
    tells "this server wants TLS" from a server that closed the connection for another
    reason. Nothing is verified: the question is only which protocol the port speaks.
    Blocking, at most `timeout_s` per step, and asked only after a connection failed."""
    host, _, port = address.rpartition(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s) as raw,
            context.wrap_socket(raw, do_handshake_on_connect=False) as tls,
        ):
            tls.do_handshake()
            return True
    except ssl.SSLError as exc:
        # An alert is a TLS answer (e.g. a client certificate is required).
        return "ALERT" in str(exc).upper()
    except (OSError, ValueError):
        return False
