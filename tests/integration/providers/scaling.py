"""Helpers of the scaling tests: providers files, and the scaler's rows and events read
from the test's database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg.rows import dict_row

from harness.waits import wait_for_async


def providers_file(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump({"providers": list(entries)}))
    return path


async def rows(db_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(
        db_url, autocommit=True, row_factory=dict_row
    ) as conn:
        cursor = await conn.execute(sql, params)
        return await cursor.fetchall()


async def provisioning_events(db_url: str) -> list[dict[str, Any]]:
    """The scaler's events in order: event_type and payload."""
    return await rows(
        db_url,
        "SELECT event_type, payload, occurred_at FROM domain_events "
        "WHERE aggregate_type = 'provisioning' ORDER BY id",
    )


async def provisioned(db_url: str) -> list[dict[str, Any]]:
    return await rows(db_url, "SELECT * FROM provisioned_workers ORDER BY created_at")


async def provider_statuses(db_url: str) -> list[dict[str, Any]]:
    return await rows(db_url, "SELECT * FROM provider_status ORDER BY provider")


async def provisioned_started(db_url: str, timeout_s: float = 30) -> dict[str, Any]:
    """The one provisioned worker once the provider's call has returned (its handle
    recorded): a fast worker can register and finish its job before that."""
    (row,) = await wait_for_async(
        "the provisioned worker's handle to be recorded",
        lambda: provisioned(db_url),
        lambda r: len(r) == 1 and r[0]["handle"] is not None,
        timeout_s=timeout_s,
    )
    return row
