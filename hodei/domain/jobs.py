"""Job states, the transitions between them and the validation of a job spec."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from hodei.errors import InvalidArgument, InvalidTransition


class JobState(enum.StrEnum):
    PENDING = "PENDING"
    ASSIGNED = "ASSIGNED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_final(self) -> bool:
        return self in FINAL_JOB_STATES

    @property
    def is_active(self) -> bool:
        """Held by a worker (its current attempt)."""
        return self in ACTIVE_JOB_STATES


FINAL_JOB_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT}
)
ACTIVE_JOB_STATES = frozenset({JobState.ASSIGNED, JobState.RUNNING})

# PENDING <- ASSIGNED/RUNNING is a retry (worker lost, ack deadline missed); the
# store only takes it while attempts < max_attempts (see `retry_or_fail`).
_JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.ASSIGNED, JobState.CANCELLED, JobState.FAILED}),
    JobState.ASSIGNED: frozenset(
        {
            JobState.RUNNING,
            JobState.PENDING,
            JobState.CANCELLED,
            JobState.FAILED,
            JobState.SUCCEEDED,
            JobState.TIMED_OUT,
        }
    ),
    JobState.RUNNING: frozenset(
        {
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.CANCELLED,
            JobState.TIMED_OUT,
            JobState.PENDING,
        }
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.TIMED_OUT: frozenset(),
}


def can_transition(current: JobState, target: JobState) -> bool:
    return target in _JOB_TRANSITIONS[current]


def check_transition(current: JobState, target: JobState) -> None:
    """Raise InvalidTransition unless current -> target is allowed."""
    if not can_transition(current, target):
        raise InvalidTransition(f"job cannot go from {current} to {target}")


def retry_or_fail(attempts: int, max_attempts: int) -> JobState:
    """Where a job goes when its attempt is lost: back to the queue while attempts remain."""
    return JobState.PENDING if attempts < max_attempts else JobState.FAILED


# Limits on what a client may submit; they keep one request from filling the
# database or the worker's argv/env space.
MAX_COMMAND_ARGS = 1024
MAX_COMMAND_BYTES = 128 * 1024
MAX_ENV_ENTRIES = 256
MAX_ENV_BYTES = 64 * 1024
MAX_LABELS = 64
MAX_NAME_LENGTH = 200
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
MAX_ATTEMPTS_LIMIT = 100


@dataclass(frozen=True, slots=True)
class JobSpec:
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    timeout_seconds: float | None = None
    max_attempts: int = 3
    name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    #: Values never shown, logged or stored in clear (hodei.redaction masks them).
    secret_env: dict[str, str] = field(default_factory=dict)


def _check_text(what: str, value: str) -> None:
    if "\x00" in value:
        raise InvalidArgument(f"{what} must not contain NUL bytes")


def validate_spec(
    command: list[str] | tuple[str, ...],
    env: dict[str, str] | None = None,
    working_dir: str = "",
    timeout_seconds: float | None = None,
    max_attempts: int | None = None,
    name: str = "",
    labels: dict[str, str] | None = None,
    default_max_attempts: int = 3,
    secret_env: dict[str, str] | None = None,
) -> JobSpec:
    """Check a submitted job and return it normalised, or raise InvalidArgument."""
    env = dict(env or {})
    labels = dict(labels or {})
    secret_env = dict(secret_env or {})
    if not command or not command[0].strip():
        raise InvalidArgument("command must not be empty")
    if len(command) > MAX_COMMAND_ARGS:
        raise InvalidArgument(
            f"command has {len(command)} arguments; the limit is {MAX_COMMAND_ARGS}"
        )
    size = sum(len(a.encode()) for a in command)
    if size > MAX_COMMAND_BYTES:
        raise InvalidArgument(f"command is {size} bytes; the limit is {MAX_COMMAND_BYTES}")
    for arg in command:
        _check_text("command", arg)
    _check_env(env, secret_env)
    _check_text("working_dir", working_dir)
    if timeout_seconds is not None:
        if timeout_seconds != timeout_seconds or timeout_seconds < 0:  # NaN or negative
            raise InvalidArgument("timeout_seconds must be a positive number of seconds")
        if timeout_seconds > MAX_TIMEOUT_SECONDS:
            raise InvalidArgument(f"timeout_seconds is over the limit of {MAX_TIMEOUT_SECONDS}")
        # A float whatever the caller passed: a group of specs goes to the database as
        # one float8[] parameter, which psycopg refuses to build from mixed int/float.
        timeout_seconds = float(timeout_seconds) if timeout_seconds else None  # 0: none
    attempts = max_attempts if max_attempts else default_max_attempts
    if attempts < 1 or attempts > MAX_ATTEMPTS_LIMIT:
        raise InvalidArgument(f"max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"name is longer than {MAX_NAME_LENGTH} characters")
    _check_text("name", name)
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"too many labels ({len(labels)}); the limit is {MAX_LABELS}")
    for key, value in labels.items():
        if not key:
            raise InvalidArgument("label names must not be empty")
        _check_text("labels", key)
        _check_text("labels", value)
    return JobSpec(
        command=tuple(command),
        env=env,
        working_dir=working_dir,
        timeout_seconds=timeout_seconds,
        max_attempts=attempts,
        name=name,
        labels=labels,
        secret_env=secret_env,
    )


def _check_env(env: dict[str, str], secret_env: dict[str, str]) -> None:
    """env and secret_env share the limits (both end up in the job's environment).
    Messages name secret variables, never their values."""
    both = len(env) + len(secret_env)
    if both > MAX_ENV_ENTRIES:
        what = "env and secret_env have" if secret_env else "env has"
        raise InvalidArgument(f"{what} {both} entries; the limit is {MAX_ENV_ENTRIES}")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in (*env.items(), *secret_env.items()))
    if size > MAX_ENV_BYTES:
        what = "env and secret_env are" if secret_env else "env is"
        raise InvalidArgument(f"{what} {size} bytes; the limit is {MAX_ENV_BYTES}")
    for what, names in (("env", env), ("secret_env", secret_env)):
        for key, value in names.items():
            if not key or "=" in key:
                raise InvalidArgument(f"invalid {what} name {key!r}")
            _check_text(f"{what} name", key)
            if "\x00" in value:
                raise InvalidArgument(f"{what} {key!r} must not contain NUL bytes")
    both_names = sorted(env.keys() & secret_env.keys())
    if both_names:
        raise InvalidArgument(
            f"{', '.join(both_names)} given both in env and in secret_env; give each name once"
        )
    for key, value in secret_env.items():
        if not value:
            raise InvalidArgument(f"secret_env {key!r} is empty")


def sanitize_output_line(line: str) -> str:
    """Make a line of process output storable: PostgreSQL text refuses NUL."""
    return line.replace("\x00", "\ufffd")
