"""One error root for the whole platform.

Domain and service code raise these; each boundary (gRPC servicers, the CLI,
configuration loading) translates them exactly once into its own vocabulary
(a gRPC status, an exit code and a one-line message).
"""

from __future__ import annotations


class HodeiError(Exception):
    """Root of every error Hodei raises on purpose. `str(err)` is a one-line message."""

    #: Name of the matching gRPC status code; the API layer maps it.
    code: str = "INTERNAL"


class InvalidArgument(HodeiError):
    """The caller sent something malformed (empty command, negative timeout...)."""

    code = "INVALID_ARGUMENT"


class NotFound(HodeiError):
    """A job or worker id that does not exist."""

    code = "NOT_FOUND"


class FailedPrecondition(HodeiError):
    """The request is well-formed but the current state refuses it
    (an invalid transition, a worker reporting a job it does not hold)."""

    code = "FAILED_PRECONDITION"


class InvalidTransition(FailedPrecondition):
    """A state machine refused a transition; nothing was applied."""


class StaleAttempt(FailedPrecondition):
    """A worker spoke about an attempt that is no longer the job's current one."""


class AlreadyExists(HodeiError):
    """Something with that identity exists and differs from the request (a worker id
    registered twice, an idempotency key used for another job spec)."""

    code = "ALREADY_EXISTS"


class Unavailable(HodeiError):
    """A dependency (database, server) cannot be reached."""

    code = "UNAVAILABLE"


class ConfigError(HodeiError):
    """Invalid settings or command-line options."""

    code = "INVALID_ARGUMENT"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (psycopg and grpc write several), or its
    type's name when it has none: what a one-line error shows of a foreign exception."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class Unauthenticated(HodeiError):
    """No credential, or one the server does not accept (unknown, revoked, expired)."""

    code = "UNAUTHENTICATED"


class PermissionDenied(HodeiError):
    """A valid credential whose role may not do this (or a worker speaking for another)."""

    code = "PERMISSION_DENIED"
