"""SecretBox's keys: the current one seals, previous ones only open, and `reseal`
moves a token to the current key. Messages never quote a token or a value."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from hodei.errors import FailedPrecondition
from hodei.server.secret_box import SecretBox

OLD, NEW, OTHER = (Fernet.generate_key().decode() for _ in range(3))
SECRET = {"TOKEN": "value-123456"}


def test_previous_keys_open_but_only_the_current_key_seals() -> None:
    old_token = SecretBox(OLD).seal(SECRET)
    assert old_token is not None
    rotating = SecretBox(NEW, [OLD])
    assert rotating.open(old_token) == SECRET
    new_token = rotating.seal(SECRET)
    assert new_token is not None
    assert SecretBox(NEW).open(new_token) == SECRET
    with pytest.raises(FailedPrecondition):
        SecretBox(OLD).open(new_token)


def test_reseal_moves_a_token_to_the_current_key() -> None:
    old_token = SecretBox(OLD).seal(SECRET)
    assert old_token is not None
    rotating = SecretBox(NEW, [OLD])
    assert not rotating.is_current(old_token)
    resealed = rotating.reseal(old_token)
    assert rotating.is_current(resealed)
    assert SecretBox(NEW).open(resealed) == SECRET


def test_a_token_no_key_opens_names_the_cause_and_quotes_nothing() -> None:
    token = SecretBox(OTHER).seal(SECRET)
    assert token is not None
    rotating = SecretBox(NEW, [OLD])
    for attempt in (rotating.open, rotating.reseal):
        with pytest.raises(FailedPrecondition) as caught:
            attempt(token)
        message = str(caught.value)
        assert "cannot be decrypted" in message and "HODEI_PREVIOUS_SECRET_KEYS" in message
        assert token.decode() not in message and "value-123456" not in message


def test_without_a_key_nothing_is_sealed_opened_or_resealed() -> None:
    box = SecretBox(None)
    assert not box.enabled
    assert box.seal({}) is None and box.open(None) == {}
    with pytest.raises(FailedPrecondition):
        box.seal(SECRET)
    with pytest.raises(FailedPrecondition):
        box.reseal(b"anything")
