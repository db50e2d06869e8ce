"""Secret env values at rest: one Fernet token per job (AES-128-CBC with an
HMAC-SHA256, cryptography's Fernet) made with HODEI_SECRET_KEY.

The server encrypts a job's secret env when it is queued and decrypts it only to
build the job's RunJob (hodei.server.assignment); nothing else reads the column, so
GetJob, ListJobs, the reports and `hodei-diagnose` never hold the values. Without a
key the server refuses secret env instead of storing it in clear. Key rotation is
not handled: a job queued under another key cannot be decrypted and fails.
"""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken

from hodei.errors import FailedPrecondition

NO_KEY = "secret env needs HODEI_SECRET_KEY on the server"


class SecretBox:
    def __init__(self, key: str | None) -> None:
        # The key was checked when the settings were loaded (one-line ConfigError).
        self._fernet = Fernet(key) if key else None

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def seal(self, secret_env: dict[str, str]) -> bytes | None:
        """The token to store for this secret env; None when there is none."""
        if not secret_env:
            return None
        if self._fernet is None:
            raise FailedPrecondition(NO_KEY)
        return self._fernet.encrypt(json.dumps(secret_env, sort_keys=True).encode())

    def open(self, token: bytes | None) -> dict[str, str]:
        """The secret env a token holds ({} for None). FailedPrecondition when this
        server has no key or another key made it; the message never quotes the token."""
        if token is None:
            return {}
        if self._fernet is None:
            raise FailedPrecondition(f"the job has secret env and {NO_KEY} to decrypt it")
        try:
            values = json.loads(self._fernet.decrypt(bytes(token)))
        except InvalidToken:
            raise FailedPrecondition(
                "the job's secret env cannot be decrypted with this server's "
                "HODEI_SECRET_KEY (queued under another key?)"
            ) from None
        return {str(k): str(v) for k, v in values.items()}
