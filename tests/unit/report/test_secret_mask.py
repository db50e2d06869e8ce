"""hodei.redaction's secret env helpers: the `***` shown for a secret env, and the
masking of a job's secret values in its output lines."""

from __future__ import annotations

from hodei.redaction import MASK, MIN_MASKED_SECRET_BYTES, SecretMask, masked_env


def test_masked_env_keeps_the_names_and_hides_the_values() -> None:
    assert masked_env({"A": "secret", "B": "other"}) == {"A": MASK, "B": MASK}
    assert masked_env(["A"]) == {"A": MASK}


def test_every_verbatim_occurrence_is_masked() -> None:
    mask = SecretMask(["hunter22"])
    assert mask.lines([b"pw=hunter22", b"hunter22hunter22", b"hunter2 2", b""]) == [
        b"pw=***",
        b"******",
        b"hunter2 2",
        b"",
    ]


def test_a_secret_containing_another_is_masked_whole() -> None:
    mask = SecretMask(["abcd", "abcdefgh"])
    assert mask.lines([b"<abcdefgh> <abcd>"]) == [b"<***> <***>"]


def test_short_secrets_are_not_masked() -> None:
    short = "x" * (MIN_MASKED_SECRET_BYTES - 1)
    mask = SecretMask([short])
    assert not mask
    assert mask.lines([short.encode()]) == [short.encode()]


def test_a_multi_line_secret_is_masked_line_by_line() -> None:
    mask = SecretMask(["first-line\nsecond-line\nab"])
    assert mask.lines([b"first-line", b"second-line", b"ab"]) == [b"***", b"***", b"ab"]


def test_non_ascii_secrets_are_matched_as_utf8() -> None:
    mask = SecretMask(["contraseña"])
    assert mask.lines(["la contraseña".encode()]) == [b"la ***"]
