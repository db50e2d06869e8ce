"""Domain rules for jobs: transitions, retry policy, spec validation (no I/O)."""

from __future__ import annotations

import itertools

import pytest

from hodei.domain.events import EventType, event_for_job_state
from hodei.domain.jobs import (
    FINAL_JOB_STATES,
    MAX_COMMAND_ARGS,
    MAX_ENV_BYTES,
    MAX_ENV_ENTRIES,
    MAX_LABEL_KEY_BYTES,
    MAX_LABEL_VALUE_BYTES,
    MAX_SPEC_BYTES,
    MAX_STORED_LINE_BYTES,
    MAX_WORKING_DIR_BYTES,
    JobState,
    can_transition,
    check_transition,
    retry_or_fail,
    sanitize_output_line,
    split_output_line,
    validate_spec,
)
from hodei.errors import FailedPrecondition, InvalidArgument, InvalidTransition

HAPPY_PATH = [JobState.PENDING, JobState.ASSIGNED, JobState.RUNNING, JobState.SUCCEEDED]


def test_happy_path_is_allowed() -> None:
    for current, target in itertools.pairwise(HAPPY_PATH):
        check_transition(current, target)


@pytest.mark.parametrize("final", sorted(FINAL_JOB_STATES))
def test_final_states_refuse_everything(final: JobState) -> None:
    assert final.is_final
    for target in JobState:
        assert not can_transition(final, target)
        with pytest.raises(InvalidTransition):
            check_transition(final, target)


def test_invalid_transition_is_a_failed_precondition() -> None:
    with pytest.raises(FailedPrecondition) as info:
        check_transition(JobState.PENDING, JobState.RUNNING)
    assert info.value.code == "FAILED_PRECONDITION"
    assert "PENDING" in str(info.value) and "RUNNING" in str(info.value)


@pytest.mark.parametrize("state", [JobState.ASSIGNED, JobState.RUNNING])
def test_active_jobs_can_be_retried(state: JobState) -> None:
    assert can_transition(state, JobState.PENDING)


def test_pending_cannot_skip_to_succeeded() -> None:
    assert not can_transition(JobState.PENDING, JobState.SUCCEEDED)
    assert not can_transition(JobState.PENDING, JobState.TIMED_OUT)


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "expected"),
    [
        (1, 3, JobState.PENDING),
        (2, 3, JobState.PENDING),
        (3, 3, JobState.FAILED),
        (1, 1, JobState.FAILED),
    ],
)
def test_retry_or_fail(attempts: int, max_attempts: int, expected: JobState) -> None:
    assert retry_or_fail(attempts, max_attempts) == expected


def test_every_state_has_an_event() -> None:
    assert event_for_job_state(JobState.RUNNING) == EventType.JOB_STARTED
    assert event_for_job_state(JobState.PENDING) == EventType.JOB_REQUEUED
    for state in JobState:
        assert isinstance(event_for_job_state(state), EventType)


def test_valid_spec_is_normalised() -> None:
    spec = validate_spec(["echo", "hi"], {"A": "1"}, timeout_seconds=0, default_max_attempts=4)
    assert spec.command == ("echo", "hi")
    assert spec.timeout_seconds is None  # 0 means no timeout
    assert spec.max_attempts == 4
    whole = validate_spec(["true"], {}, timeout_seconds=5, default_max_attempts=1)
    assert isinstance(whole.timeout_seconds, float) and whole.timeout_seconds == 5.0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"command": []}, "command must not be empty"),
        ({"command": ["  "]}, "command must not be empty"),
        ({"command": ["a\x00b"]}, "NUL"),
        ({"command": ["x"] * (MAX_COMMAND_ARGS + 1)}, "arguments"),
        ({"command": ["x"], "timeout_seconds": -1}, "timeout_seconds"),
        ({"command": ["x"], "timeout_seconds": float("nan")}, "timeout_seconds"),
        ({"command": ["x"], "env": {f"K{i}": "v" for i in range(MAX_ENV_ENTRIES + 1)}}, "env"),
        ({"command": ["x"], "env": {"K": "v" * (MAX_ENV_BYTES + 1)}}, "env is"),
        ({"command": ["x"], "env": {"A=B": "v"}}, "invalid env name"),
        ({"command": ["x"], "max_attempts": 1000}, "max_attempts"),
        ({"command": ["x"], "labels": {"": "v"}}, "label"),
        ({"command": ["x"], "env": {"T": "1"}, "secret_env": {"T": "2"}}, "T given both"),
        ({"command": ["x"], "secret_env": {"": "value"}}, "invalid secret_env name"),
        ({"command": ["x"], "secret_env": {"T": ""}}, "secret_env 'T' is empty"),
        (
            {"command": ["x"], "env": {"A": "v" * 40_000}, "secret_env": {"T": "v" * 40_000}},
            "env and secret_env are",
        ),
    ],
)
def test_invalid_specs_are_refused_with_a_clear_message(
    kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_spec(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_sanitize_output_line_replaces_nul() -> None:
    assert sanitize_output_line("a\x00b") == "a\ufffdb"
    assert sanitize_output_line("plain") == "plain"


def test_active_states_are_the_ones_a_worker_holds() -> None:
    assert {s for s in JobState if s.is_active} == {JobState.ASSIGNED, JobState.RUNNING}
    assert not any(s.is_active and s.is_final for s in JobState)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"labels": {"k": "v" * 10_485_760}},
            "labels['k']: value is 10485760 bytes; at most 4096",
        ),
        (
            {"labels": {"k" * 300: "v"}},
            f"labels[{'k' * 40 + '...'!r}]: key is 300 bytes; at most 256",
        ),
        ({"working_dir": "/" * 5000}, "working_dir is 5000 bytes; at most 4096"),
        (
            # Every part within its own bound, the whole over MAX_SPEC_BYTES.
            {
                "command": ["x" * 100_000, "y" * 28_000],
                "labels": {f"k{i}": "v" * 4000 for i in range(40)},
            },
            f"the job spec is 288110 bytes; at most {MAX_SPEC_BYTES}",
        ),
    ],
)
def test_spec_limits_name_the_field_and_the_limit(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"command": ["x"], **kwargs}
    with pytest.raises(InvalidArgument) as info:
        validate_spec(**args)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_a_spec_at_every_bound_is_accepted() -> None:
    spec = validate_spec(
        ["x"],
        working_dir="d" * MAX_WORKING_DIR_BYTES,
        labels={"k" * MAX_LABEL_KEY_BYTES: "v" * MAX_LABEL_VALUE_BYTES},
    )
    assert len(spec.working_dir) == MAX_WORKING_DIR_BYTES


@pytest.mark.parametrize("line", ["", "short", "a" * 10, "é" * 7, "a€" * 9, "🙂x" * 11])
@pytest.mark.parametrize("max_bytes", [4, 5, 7, 16])
def test_split_output_line_keeps_every_byte_in_pieces_within_the_bound(
    line: str, max_bytes: int
) -> None:
    pieces = split_output_line(line, max_bytes)
    assert "".join(pieces) == line
    assert all(len(p.encode()) <= max_bytes for p in pieces)
    assert all(pieces) or pieces == [""]


def test_a_100_mb_line_splits_into_pieces_of_the_stored_bound() -> None:
    pieces = split_output_line("a" * 100_000_000)
    assert len(pieces) == 96  # ceil(100e6 / 1 MiB)
    assert {len(p) for p in pieces[:-1]} == {MAX_STORED_LINE_BYTES}
    assert sum(map(len, pieces)) == 100_000_000


def test_secret_env_is_kept_apart_from_env() -> None:
    spec = validate_spec(["x"], {"A": "1"}, secret_env={"TOKEN": "value"})
    assert spec.env == {"A": "1"} and spec.secret_env == {"TOKEN": "value"}


def test_a_refused_secret_env_is_not_quoted() -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_spec(["x"], secret_env={"T": "hunter2-\x00"})
    assert "hunter2" not in str(info.value)
