"""Exit codes of Hodei's programs: `hodei` (printed by `hodei --help`), `python -m
hodei.server` and `python -m hodei.worker`.

`hodei job run` exits with the job's own exit code when the job has one, so a
script can use it like the command itself; the codes below tell the other
endings apart. The codes 2-6 can collide with a job's own code: the one-line
message on stderr (`hodei: error: ...`) says which it was.
"""

from __future__ import annotations

from hodei.errors import (
    AlreadyExists,
    ConfigError,
    FailedPrecondition,
    HodeiError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)

OK = 0
ERROR = 1  # any other error reported by the server or the platform
USAGE = 2  # invalid command line or input (argparse uses 2 as well)
UNREACHABLE = 3  # the server (or database) cannot be reached
NOT_FOUND = 4  # unknown job id
# The request is refused in the current state: cancel a finished job, reuse an
# idempotency key for another job spec.
FAILED_PRECONDITION = 5
# No token, or one the server refuses (unknown, revoked, expired), or a role that may
# not do this (UNAUTHENTICATED or PERMISSION_DENIED).
AUTH = 6
UNEXPECTED = 70  # a bug in hodei itself (EX_SOFTWARE); --debug shows the traceback
JOB_FAILED = 126  # `job run`: FAILED without an exit code (could not start, attempts exhausted)
JOB_TIMED_OUT = 124  # `job run`: TIMED_OUT (as timeout(1))
JOB_CANCELLED = 125  # `job run`: CANCELLED by someone else
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
BROKEN_PIPE = 141  # stdout closed by the reader (128 + SIGPIPE)

EPILOG = """exit codes:
  0    success (job run: the job's exit code)
  1    error reported by the server
  2    invalid command line or input
  3    server or database unreachable
  4    not found (unknown job id)
  5    refused in the current state (e.g. cancelling a finished job, or an
       idempotency key already used for another job spec)
  6    not authenticated or not allowed: no token, a revoked or expired
       token, or a role that may not do this (see --token, HODEI_TOKEN)
  70   unexpected internal error (run with --debug)
  124  job run: the job TIMED_OUT
  125  job run: the job was CANCELLED
  126  job run: the job FAILED without an exit code (could not start, worker lost)
  130  interrupted (Ctrl-C); job run also cancels its job
"""


def for_error(err: HodeiError) -> int:
    if isinstance(err, InvalidArgument | ConfigError):
        return USAGE
    if isinstance(err, Unavailable):
        return UNREACHABLE
    if isinstance(err, NotFound):
        return NOT_FOUND
    if isinstance(err, Unauthenticated | PermissionDenied):
        return AUTH
    if isinstance(err, FailedPrecondition | AlreadyExists):
        return FAILED_PRECONDITION
    return ERROR
