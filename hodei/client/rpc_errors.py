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


def translate(err: grpc.RpcError, address: str, deadline: float | None = None) -> HodeiError:
    """The HodeiError for a failed call, carrying the server's one-line message."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else "") or ""
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
