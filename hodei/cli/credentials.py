"""The tokens `hodei up` creates, kept in its data directory like a kubeconfig.

`<data dir>/hodei-credentials.json` (mode 0600) holds an admin token for the CLI and a
worker token for the local workers. The CLI's token is, in order: `--token`,
`HODEI_TOKEN`, then this file's admin token (HODEI_DATA_DIR / --data-dir say where).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from hodei.settings import Settings, default_data_dir

FILE_NAME = "hodei-credentials.json"


def credentials_path(settings: Settings) -> Path:
    return (settings.database.data_dir or default_data_dir()) / FILE_NAME


def read_credentials(path: Path) -> dict[str, str]:
    """The file's tokens by role; {} when there is no readable file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


def write_credentials(path: Path, tokens: dict[str, str]) -> None:
    """Written to a 0600 file created beside it, then renamed: never readable by others,
    not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(tokens, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)


def cli_token(settings: Settings) -> str:
    """--token / HODEI_TOKEN, else the admin token `hodei up` left in the data dir."""
    if settings.client.token:
        return settings.client.token
    return read_credentials(credentials_path(settings)).get("admin", "")
