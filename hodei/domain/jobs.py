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
MAX_LABEL_KEY_BYTES = 256
MAX_LABEL_VALUE_BYTES = 4096
MAX_WORKING_DIR_BYTES = 4096
#: The whole spec (command, env, labels, name, working_dir) in bytes. Under the sum
#: of the parts' bounds (~470 KiB): 32 RunJobs in one ServerMessage stay under the
#: worker's 16 MiB receive limit, and a 4 MiB ListJobs page holds at least 15 jobs.
MAX_SPEC_BYTES = 256 * 1024
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
    #: Only a worker whose labels contain these runs the job (hodei.domain.scaling).
    selector: dict[str, str] = field(default_factory=dict)


def _shown(key: str) -> str:
    """A label key as an error message names it: quoted, and cut if it is long."""
    return repr(key if len(key) <= 40 else key[:40] + "...")


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
    selector: dict[str, str] | None = None,
) -> JobSpec:
    """Check a submitted job and return it normalised, or raise InvalidArgument."""
    env = dict(env or {})
    labels = dict(labels or {})
    secret_env = dict(secret_env or {})
    selector = dict(selector or {})
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
    env_size = _check_env(env, secret_env)
    working_dir_size = len(working_dir.encode())
    if working_dir_size > MAX_WORKING_DIR_BYTES:
        raise InvalidArgument(
            f"working_dir is {working_dir_size} bytes; at most {MAX_WORKING_DIR_BYTES}"
        )
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
    labels_size = _check_labels("labels", labels) + _check_labels("selector", selector)
    # Each part is bounded above; their sum is bounded too, so that no spec is near
    # the message limits however its bytes are spread.
    total = size + env_size + labels_size + working_dir_size + len(name.encode())
    if total > MAX_SPEC_BYTES:
        raise InvalidArgument(f"the job spec is {total} bytes; at most {MAX_SPEC_BYTES}")
    return JobSpec(
        command=tuple(command),
        env=env,
        working_dir=working_dir,
        timeout_seconds=timeout_seconds,
        max_attempts=attempts,
        name=name,
        labels=labels,
        secret_env=secret_env,
        selector=selector,
    )


def _check_labels(what: str, labels: dict[str, str]) -> int:
    """Labels (or a selector) within the limits; returns their size in bytes."""
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"too many {what} ({len(labels)}); the limit is {MAX_LABELS}")
    labels_size = 0
    for key, value in labels.items():
        if not key:
            raise InvalidArgument(f"{what} names must not be empty")
        key_size, value_size = len(key.encode()), len(value.encode())
        if key_size > MAX_LABEL_KEY_BYTES:
            raise InvalidArgument(
                f"{what}[{_shown(key)}]: key is {key_size} bytes; at most {MAX_LABEL_KEY_BYTES}"
            )
        if value_size > MAX_LABEL_VALUE_BYTES:
            raise InvalidArgument(
                f"{what}[{_shown(key)}]: value is {value_size} bytes; "
                f"at most {MAX_LABEL_VALUE_BYTES}"
            )
        _check_text(what, key)
        _check_text(what, value)
        labels_size += key_size + value_size
    return labels_size


def _check_env(env: dict[str, str], secret_env: dict[str, str]) -> int:
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
    return size


def sanitize_output_line(line: str) -> str:
    """Make a line of process output storable: PostgreSQL text refuses NUL."""
    return line.replace("\x00", "\ufffd")


#: Longest output line the server stores as one row; the worker splits at its own
#: bound (HODEI_WORKER_MAX_LINE_BYTES, 1 MiB by default), the server splits again
#: whatever a client sent, so that every row fits in a page of GetLogs.
MAX_STORED_LINE_BYTES = 1024 * 1024


def split_output_line(line: str, max_bytes: int = MAX_STORED_LINE_BYTES) -> list[str]:
    """`line` as pieces of at most `max_bytes` UTF-8 bytes, never cut inside a character,
    in order: joined they give `line` back (nothing is lost, no marker is added)."""
    if len(line) * 4 <= max_bytes:  # cheap: a character is at most 4 bytes
        return [line]
    data = line.encode()
    if len(data) <= max_bytes:
        return [line]
    pieces: list[str] = []
    start = 0
    while len(data) - start > max_bytes:
        cut = start + max_bytes
        # Back off over UTF-8 continuation bytes (10xxxxxx): at most 3 of them.
        while (data[cut] & 0xC0) == 0x80:
            cut -= 1
        pieces.append(data[start:cut].decode())
        start = cut
    pieces.append(data[start:].decode())
    return pieces
