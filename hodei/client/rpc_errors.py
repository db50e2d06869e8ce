"""grpc.RpcError -> hodei.errors, once, for every client call."""

from __future__ import annotations

import grpc

from hodei.errors import (
    AlreadyExists,
    FailedPrecondition,
    HodeiError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from hodei.tls import ClientTLS, speaks_tls

# Phrases grpc-core puts in the details of a status it made up itself because the
# connection failed (as opposed to an UNAVAILABLE the server sent on purpose).
_TRANSPORT_HINTS = (
    "failed to connect",
    "connection refused",
    "connect failed",
    "socket closed",
    "connection reset",
    "dns resolution failed",
    "name resolution",
    "broken pipe",
    "goaway",
    "end of tcp stream",
    "keepalive watchdog timeout",
)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def unreachable(address: str, reason: str = "") -> Unavailable:
    suffix = f" ({_one_line(reason)})" if reason else ""
    return Unavailable(f"cannot reach the Hodei server at {address}{suffix}")


def translate(
    err: grpc.RpcError,
    address: str,
    deadline: float | None = None,
    *,
    tls: ClientTLS | None = None,
) -> HodeiError:
    """The HodeiError for a failed call, carrying the server's one-line message.
    `tls`: how the client dialled (None: plaintext), to explain a TLS mismatch."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else "") or ""
    problem = tls_problem(code, details, address, tls)
    if problem is not None:
        return Unavailable(problem)
    message = _one_line(details) or code.name.lower()
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        return InvalidArgument(message)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(message)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(message)
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return AlreadyExists(message)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(f"not authenticated: {message}")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(f"permission denied: {message}")
    if code == grpc.StatusCode.UNAVAILABLE:
        lowered = details.lower()
        if not details or any(hint in lowered for hint in _TRANSPORT_HINTS):
            return unreachable(address, _short_transport_reason(details))
        return Unavailable(f"the Hodei server at {address} is unavailable: {message}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        within = f" within {deadline:g} s" if deadline else ""
        return Unavailable(f"the Hodei server at {address} did not answer{within}")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return HodeiError(
            f"{address} does not implement this call: is it a Hodei server of this version?"
        )
    if code == grpc.StatusCode.CANCELLED:
        return HodeiError(f"the call to {address} was cancelled")
    return HodeiError(f"server error {code.name}: {message}")


def _short_transport_reason(details: str) -> str:
    """'failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1:
    Failed to connect to remote host: Connection refused' -> 'Connection refused'."""
    if not details:
        return ""
    tail = details.rsplit(":", 1)[-1].strip()
    return tail or details


def is_tls_handshake_failure(err: grpc.RpcError) -> bool:
    """The connection failed in the TLS handshake (a CA, name or version mismatch):
    trying again cannot help, so the client's retries stop at once."""
    details = ((err.details() if hasattr(err, "details") else "") or "").lower()
    return "handshake failed" in details or "verification check failed" in details


def tls_problem(
    code: grpc.StatusCode, details: str, address: str, tls: ClientTLS | None
) -> str | None:
    """One line saying how the client's TLS settings and the server's disagree, when a
    failed connection shows that they do; None for any other failure."""
    if code != grpc.StatusCode.UNAVAILABLE:
        return None
    lowered = details.lower()
    if "failed to connect" not in lowered:
        return None
    if tls is None:
        # A TLS server closes a plaintext HTTP/2 connection without a word: ask it.
        if "socket closed" in lowered and speaks_tls(address):
            return (
                f"the server at {address} speaks TLS; set HODEI_TLS_CA (--tls-ca) to the CA "
                "that signed its certificate"
            )
        return None
    if "wrong_version_number" in lowered:
        return (
            f"the server at {address} does not speak TLS; unset HODEI_TLS_CA, or give the "
            "server HODEI_TLS_CERT and HODEI_TLS_KEY"
        )
    if "certificate_verify_failed" in lowered:
        return (
            f"the certificate of the server at {address} is not signed by the CA in "
            "HODEI_TLS_CA (or has expired)"
        )
    if "hostname verification" in lowered:
        name = tls.server_name or address.rpartition(":")[0]
        return (
            f"the certificate of the server at {address} is not for {name!r}; set "
            "HODEI_TLS_SERVER_NAME to a name it holds"
        )
    if "socket closed" in lowered:
        # The server ends the handshake when it wants a client certificate (mTLS) and
        # was shown none, or one its HODEI_TLS_CLIENT_CA did not sign.
        if tls.cert is None:
            return (
                f"the server at {address} closed the TLS connection: it may require a "
                "client certificate (set HODEI_TLS_CLIENT_CERT and HODEI_TLS_CLIENT_KEY)"
            )
        return (
            f"the server at {address} refused the TLS connection: is the client "
            "certificate (HODEI_TLS_CLIENT_CERT) signed by the server's HODEI_TLS_CLIENT_CA?"
        )
    if "handshake failed" in lowered:
        return f"TLS handshake with the server at {address} failed ({_tls_reason(details)})"
    return None


def _tls_reason(details: str) -> str:
    for part in details.split(":"):
        word = part.strip()
        if word.isupper() and "_" in word and word not in ("SSL_ERROR_SSL", "OPENSSL_INTERNAL"):
            return word.lower().replace("_", " ")
    return "see the server's log"
