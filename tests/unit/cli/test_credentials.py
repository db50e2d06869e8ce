"""The tokens `hodei up` keeps for the CLI (hodei.cli.credentials)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hodei.cli.credentials import cli_token, credentials_path, read_credentials, write_credentials
from hodei.settings import Settings


def test_the_file_is_written_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "data" / "hodei-credentials.json"
    old = os.umask(0o022)  # a permissive umask must not leak into the file's mode
    try:
        write_credentials(path, {"admin": "hodei_a", "worker": "hodei_w"})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_credentials(path) == {"admin": "hodei_a", "worker": "hodei_w"}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_a_missing_or_broken_file_gives_no_token(tmp_path: Path) -> None:
    assert read_credentials(tmp_path / "none.json") == {}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert read_credentials(broken) == {}
    broken.write_text('["a list"]')
    assert read_credentials(broken) == {}


def test_the_token_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HODEI_TOKEN", raising=False)
    settings = Settings.model_validate({"database": {"data_dir": tmp_path}})
    assert credentials_path(settings) == tmp_path / "hodei-credentials.json"
    assert cli_token(settings) == ""
    write_credentials(credentials_path(settings), {"admin": "hodei_from_file"})
    assert cli_token(settings) == "hodei_from_file"
    given = Settings.model_validate(
        {"database": {"data_dir": tmp_path}, "client": {"token": "hodei_given"}}
    )
    assert cli_token(given) == "hodei_given"  # --token / HODEI_TOKEN win over the file
