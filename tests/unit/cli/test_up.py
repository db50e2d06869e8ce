"""`hodei up` keeps a secret key beside its data dir, so the quickstart takes secret env."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from hodei.cli.up import secret_key_file, with_secret_key
from hodei.errors import InvalidArgument
from hodei.settings import load_settings


def test_a_key_is_made_once_with_mode_0600_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HODEI_SECRET_KEY", raising=False)
    settings = load_settings(database={"data_dir": tmp_path / "pgdata"})
    first = with_secret_key(settings)
    path = secret_key_file(settings)
    assert path == tmp_path / "pgdata.secret-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.server.secret_key == path.read_text().strip()
    Fernet(first.server.secret_key)  # a valid key
    assert with_secret_key(settings).server.secret_key == first.server.secret_key


def test_a_given_key_wins_and_no_file_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("HODEI_SECRET_KEY", key)
    settings = load_settings(database={"data_dir": tmp_path / "pgdata"})
    assert with_secret_key(settings).server.secret_key == key
    assert not secret_key_file(settings).exists()


def test_a_damaged_key_file_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HODEI_SECRET_KEY", raising=False)
    settings = load_settings(database={"data_dir": tmp_path / "pgdata"})
    secret_key_file(settings).write_text("garbage\n")
    with pytest.raises(InvalidArgument) as caught:
        with_secret_key(settings)
    assert "does not hold a Fernet key" in str(caught.value)
    assert "garbage" not in str(caught.value)
