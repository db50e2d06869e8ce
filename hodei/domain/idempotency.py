"""Idempotency keys of job submissions: what a key may be, and what "the same request"
means (no I/O).

A client names each logical submission with a key and sends the same key on every
retry. The server keeps the key with a hash of the request: the same key with the same
request answers the job(s) the first call created; the same key with another request is
refused. The hash covers what the job will do (the validated, normalised spec) and not
how the call was traced (the correlation id), so a retry that picked a new correlation
id is still the same submission.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Literal

from hodei.domain.jobs import JobSpec
from hodei.errors import InvalidArgument

MAX_KEY_LENGTH = 128
# Visible ASCII only: a key is typed on command lines and printed in messages, where
# spaces, control and look-alike characters would make two keys read the same.
_KEY_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))

#: Which call a key was used for: a key names one call, so a QueueJobs with the key of
#: a QueueJob is another request even when it holds the same single spec.
SubmissionKind = Literal["job", "jobs"]


def validate_key(key: str) -> str:
    """The key as given, or InvalidArgument with a one-line message. "" means no key."""
    if key == "":
        return key
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgument(
            f"idempotency key is {len(key)} characters long; at most {MAX_KEY_LENGTH}"
        )
    bad = next((c for c in key if c not in _KEY_CHARS), None)
    if bad is not None:
        raise InvalidArgument(
            f"idempotency key has the character {bad!r}; use printable ASCII "
            "without spaces (1-128 characters)"
        )
    return key


def canonical_spec(spec: JobSpec) -> dict[str, object]:
    """The parts of a spec that make it the same job, in a form whose JSON is stable:
    maps are sorted by key when dumped; the command keeps its order. Secret env: the
    names only, so that nothing derived from a secret value is stored with the key."""
    canonical: dict[str, object] = {
        "command": list(spec.command),
        "env": spec.env,
        "working_dir": spec.working_dir,
        "timeout_seconds": spec.timeout_seconds,
        "max_attempts": spec.max_attempts,
        "name": spec.name,
        "labels": spec.labels,
    }
    if spec.secret_env:  # absent otherwise: the hashes of keys stored before stay valid
        canonical["secret_env"] = sorted(spec.secret_env)
    if spec.selector:  # likewise
        canonical["selector"] = spec.selector
    return canonical


def request_hash(kind: SubmissionKind, specs: Sequence[JobSpec]) -> str:
    """SHA-256 (hex) of a submission's canonical specs, in request order."""
    document = {"v": 1, "kind": kind, "jobs": [canonical_spec(s) for s in specs]}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
