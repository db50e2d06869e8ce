"""Idempotency keys (hodei.domain.idempotency): what a key may be and when two
submissions are the same request."""

from __future__ import annotations

import pytest

from hodei.domain.idempotency import MAX_KEY_LENGTH, request_hash, validate_key
from hodei.domain.jobs import JobSpec, validate_spec
from hodei.errors import InvalidArgument


def _spec(command: list[str], **fields: object) -> JobSpec:
    return validate_spec(command, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["a", "retry-42", "x" * MAX_KEY_LENGTH, "A:b/c_d.e~!#{}"])
def test_visible_ascii_keys_up_to_the_limit_are_accepted(key: str) -> None:
    assert validate_key(key) == key


def test_an_empty_key_means_no_key() -> None:
    assert validate_key("") == ""


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("x" * (MAX_KEY_LENGTH + 1), "129 characters long; at most 128"),
        ("with space", "the character ' '"),
        ("tab\there", "the character '\\t'"),
        ("caf\u00e9", "the character '\u00e9'"),
        ("nul\x00", "the character '\\x00'"),
        ("line\nbreak", "the character '\\n'"),
    ],
)
def test_other_keys_are_refused_in_one_line(key: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_key(key)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_order_of_env_and_labels_does_not_matter() -> None:
    one = _spec(["echo", "hi"], env={"A": "1", "B": "2"}, labels={"x": "1", "y": "2"})
    two = _spec(["echo", "hi"], env={"B": "2", "A": "1"}, labels={"y": "2", "x": "1"})
    assert request_hash("job", [one]) == request_hash("job", [two])


def test_the_order_of_the_command_does() -> None:
    assert request_hash("job", [_spec(["echo", "a", "b"])]) != request_hash(
        "job", [_spec(["echo", "b", "a"])]
    )


@pytest.mark.parametrize(
    "change",
    [
        {"env": {"A": "2"}},
        {"working_dir": "/tmp"},
        {"timeout_seconds": 5.0},
        {"max_attempts": 2},
        {"name": "other"},
        {"labels": {"k": "v"}},
    ],
)
def test_every_part_of_the_spec_counts(change: dict[str, object]) -> None:
    base = _spec(["true"], env={"A": "1"})
    other = _spec(["true"], **{"env": {"A": "1"}, **change})
    assert request_hash("job", [base]) != request_hash("job", [other])


def test_a_normalised_spec_hashes_as_what_it_means() -> None:
    # No timeout given and a timeout of 0 both mean "none"; max_attempts 0 is the default.
    assert request_hash("job", [_spec(["true"], timeout_seconds=0)]) == request_hash(
        "job", [_spec(["true"])]
    )
    assert request_hash("job", [_spec(["true"], max_attempts=3)]) == request_hash(
        "job", [_spec(["true"], max_attempts=None, default_max_attempts=3)]
    )


def test_a_batch_hashes_in_order_and_by_kind() -> None:
    a, b = _spec(["a"]), _spec(["b"])
    assert request_hash("jobs", [a, b]) == request_hash("jobs", [_spec(["a"]), _spec(["b"])])
    assert request_hash("jobs", [a, b]) != request_hash("jobs", [b, a])
    assert request_hash("jobs", [a]) != request_hash("job", [a])
