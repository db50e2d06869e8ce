"""Secret env values at rest: one Fernet token per job (AES-128-CBC with an
HMAC-SHA256, cryptography's Fernet) made with HODEI_SECRET_KEY.

The server encrypts a job's secret env when it is queued and decrypts it only to
build the job's RunJob (hodei.server.assignment); nothing else reads the column, so
GetJob, ListJobs, the reports and `hodei-diagnose` never hold the values. Without a
key the server refuses secret env instead of storing it in clear.

Key rotation (docs/server.md, "Rotating the secret key"): the current key encrypts,
HODEI_PREVIOUS_SECRET_KEYS only decrypt (cryptography's MultiFernet), so the jobs
queued under an earlier key still run; `hodei db reseal-secrets` re-encrypts the
stored tokens under the current key (`reseal`), after which the earlier keys can go.
A token no key opens fails its job with a message that names the cause.
"""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hodei.errors import FailedPrecondition

NO_KEY = "secret env needs HODEI_SECRET_KEY on the server"
UNREADABLE = (
    "the job's secret env cannot be decrypted with this server's HODEI_SECRET_KEY or "
    "HODEI_PREVIOUS_SECRET_KEYS (queued under another key?)"
)


class SecretBox:
    def __init__(self, key: str | None, previous: list[str] | None = None) -> None:
        # The keys were checked when the settings were loaded (one-line ConfigError),
        # previous keys only with a current one.
        self._fernet = Fernet(key) if key else None
        self._keys = (
            MultiFernet([self._fernet, *(Fernet(k) for k in previous or [])])
            if self._fernet is not None
            else None
        )

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
        server has no key or none of its keys made it; the message never quotes the
        token."""
        if token is None:
            return {}
        if self._keys is None:
            raise FailedPrecondition(f"the job has secret env and {NO_KEY} to decrypt it")
        try:
            values = json.loads(self._keys.decrypt(bytes(token)))
        except InvalidToken:
            raise FailedPrecondition(UNREADABLE) from None
        return {str(k): str(v) for k, v in values.items()}

    def is_current(self, token: bytes) -> bool:
        """Whether the current key made `token` (nothing to reseal)."""
        if self._fernet is None:
            return False
        try:
            self._fernet.decrypt(bytes(token))
        except InvalidToken:
            return False
        return True

    def reseal(self, token: bytes) -> bytes:
        """The same secret env encrypted under the current key. FailedPrecondition
        (UNREADABLE) when no key of this box opens it."""
        if self._keys is None:
            raise FailedPrecondition(NO_KEY)
        try:
            return self._keys.rotate(bytes(token))
        except InvalidToken:
            raise FailedPrecondition(UNREADABLE) from None
