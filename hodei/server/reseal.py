"""`hodei db reseal-secrets`: every stored secret env re-encrypted under the current
HODEI_SECRET_KEY, the last step of a key rotation (docs/server.md, "Rotating the secret
key"). Tokens are read in batches by job id and each is written back only over the
token it was made from, so it runs beside live servers: a job queued meanwhile is
sealed under the current key already, a job pruned meanwhile is skipped. The values
are decrypted only in this process's memory, never printed or logged."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg

from hodei.db.connector import query
from hodei.errors import FailedPrecondition
from hodei.server.secret_box import SecretBox

logger = logging.getLogger(__name__)

#: Jobs read and rewritten per statement.
BATCH = 500


@dataclass
class ResealReport:
    #: Re-encrypted under the current key (or, in a dry run, would be).
    resealed: int = 0
    #: Made with the current key already.
    current: int = 0
    #: Jobs whose token no key opens: left as they are; such a job fails when it runs.
    unreadable: list[uuid.UUID] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "resealed": self.resealed,
            "current": self.current,
            "unreadable": [str(job_id) for job_id in self.unreadable],
            "dry_run": self.dry_run,
        }


async def reseal_secrets(
    conn: psycopg.AsyncConnection[dict[str, Any]],
    box: SecretBox,
    *,
    dry_run: bool = False,
    batch: int = BATCH,
) -> ResealReport:
    """Reseal every job's secret env on `conn` (autocommit, dict rows) with `box`."""
    if not box.enabled:
        raise FailedPrecondition("resealing needs HODEI_SECRET_KEY: the key to encrypt with")
    report = ResealReport(dry_run=dry_run)
    after = uuid.UUID(int=0)
    while True:
        cur = await conn.execute(query("sealed_secret_envs"), {"after": after, "limit": batch})
        rows = await cur.fetchall()
        if not rows:
            return report
        after = rows[-1]["id"]
        ids, old, new = [], [], []
        for row in rows:
            token = bytes(row["secret_env"])
            if box.is_current(token):
                report.current += 1
                continue
            try:
                resealed = box.reseal(token)
            except FailedPrecondition:
                # Reported (the caller names them), not logged as a warning too.
                report.unreadable.append(row["id"])
                logger.debug(
                    "secret env opens with no key: left as it is", extra={"job_id": str(row["id"])}
                )
                continue
            ids.append(row["id"])
            old.append(token)
            new.append(resealed)
        if dry_run:
            report.resealed += len(ids)
        elif ids:
            cur = await conn.execute(
                query("reseal_secret_envs"), {"ids": ids, "old": old, "new": new}
            )
            report.resealed += cur.rowcount
