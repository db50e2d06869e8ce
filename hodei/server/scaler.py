"""The scaler: workers on demand (issue 17). A named supervised loop, started only when
a providers file is configured (HODEI_PROVIDERS_FILE).

Each round:
1. checks each provider's health (and its circuit) and records it (provider_status);
2. under a transaction-scoped advisory lock (one replica decides at a time), reads the
   waiting jobs and the free slots, lets hodei.domain.scaling choose, and writes a
   PROVISIONING row (and a single-use worker token) per new worker: a replica that
   decides next counts those rows, so one shortage is provisioned once;
3. asks the providers (outside any transaction: a container takes seconds) and records
   WorkerProvisioned or ProvisioningFailed, each with its outbox row;
4. drains and removes workers idle past their provider's idle_ttl (WorkerScaledDown),
   cleans up after workers that ended by themselves, and gives up on workers that never
   registered (ProvisioningFailed, stage "register").
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb

from hodei.db.connector import Database, Tx, use_role
from hodei.domain.auth import Role
from hodei.domain.events import AggregateType, EventType
from hodei.domain.scaling import (
    Capacity,
    Circuit,
    IdleWorker,
    ProviderView,
    WaitingJob,
    plan_provisioning,
    plan_scale_down,
)
from hodei.domain.workers import WorkerState
from hodei.errors import first_line
from hodei.providers.base import Provider, ProviderHealth, ProvisionRequest
from hodei.providers.config import ProviderConfig, load_providers
from hodei.providers.registry import build_provider
from hodei.server.events import Event, record, worker_event
from hodei.server.supervisor import wait_or_stop
from hodei.server.tokens import create_token
from hodei.settings import Settings

logger = logging.getLogger(__name__)

#: Most waiting jobs one round looks at, and most workers it starts.
_WAITING_LIMIT = 500
_ROUND_PROVISIONS = 10
#: A health check or a provider call that takes longer counts as a failure.
_HEALTH_TIMEOUT = 10.0
_PROVISION_TIMEOUT = 120.0
#: Rounds between two prunings of the scaler's old rows (scaler_prune).
_PRUNE_EVERY = 500


def load_scaler_providers(settings: Settings) -> list[tuple[ProviderConfig, Provider]]:
    """The providers of settings.scaling.providers_file, built (none when it is unset);
    ConfigError (one line) for a bad file or a type whose extra is not installed."""
    path = settings.scaling.providers_file
    if path is None:
        return []
    return [(config, build_provider(config)) for config in load_providers(path).by_priority()]


@dataclass
class Managed:
    """One providers.yaml entry, its provider and what this server knows of it."""

    config: ProviderConfig
    provider: Provider
    circuit: Circuit
    health: ProviderHealth = field(default_factory=lambda: ProviderHealth(False, "not checked"))


def provisioning_event(
    event_type: EventType, provisioned_id: uuid.UUID, actor: str, **payload: Any
) -> Event:
    clean = {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in payload.items()}
    return Event(event_type, AggregateType.PROVISIONING, provisioned_id, actor, "", clean)


class Scaler:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        server_id: str,
        server_address: str,
        providers: list[tuple[ProviderConfig, Provider]],
    ) -> None:
        self.settings = settings
        self.db = db
        self.server_id = server_id
        self.server_address = server_address
        scaling = settings.scaling
        self.managed = {
            config.name: Managed(
                config, provider, Circuit(scaling.failure_threshold, scaling.cooldown)
            )
            for config, provider in providers
        }
        self.actor = f"scaler:{server_id}"
        #: Set to run a round now (a job was queued here).
        self.wake = asyncio.Event()
        self.rounds = 0

    async def run(self, stop: asyncio.Event) -> None:
        use_role("recovery")
        logger.info(
            "scaler started (%d providers, every %.2f s)",
            len(self.managed),
            self.settings.scaling.interval,
            extra={"providers": ",".join(self.managed)},
        )
        while not stop.is_set():
            self.wake.clear()
            await self.round()
            await wait_or_stop(stop, self.wake, seconds=self.settings.scaling.interval)
        logger.info("scaler stopped")

    async def close(self) -> None:
        for managed in self.managed.values():
            try:
                await managed.provider.close()
            except Exception as exc:  # a provider's cleanup must not stop the others'
                logger.warning("provider %s: close failed: %s", managed.config.name, exc)

    async def round(self) -> None:
        await self._check_health()
        planned = await self._plan()
        if planned:
            await asyncio.gather(*(self._provision(*p) for p in planned))
        await self._scale_down()
        await self._clean_up()
        if self.rounds % _PRUNE_EVERY == 0:
            async with self.db.connection() as tx:
                await tx.one("scaler_prune", {"age": self.settings.retention.jobs_age})
        self.rounds += 1

    # ---- health and circuits -----------------------------------------------------

    async def _check_health(self) -> None:
        async def check(managed: Managed) -> None:
            try:
                managed.health = await asyncio.wait_for(managed.provider.health(), _HEALTH_TIMEOUT)
            except TimeoutError:
                managed.health = ProviderHealth(False, f"no answer in {_HEALTH_TIMEOUT:.0f} s")
            except Exception as exc:
                managed.health = ProviderHealth(False, first_line(exc))

        await asyncio.gather(*(check(m) for m in self.managed.values()))
        async with self.db.connection() as tx:
            for managed in self.managed.values():
                await self._record_status(tx, managed)

    async def _record_status(self, tx: Tx, managed: Managed, error: str | None = None) -> None:
        await tx.execute(
            "upsert_provider_status",
            {
                "provider": managed.config.name,
                "server_id": self.server_id,
                "provider_type": managed.config.type,
                "healthy": managed.health.ok,
                "detail": managed.health.detail[:500],
                "circuit_open": managed.circuit.is_open(time.monotonic()),
                "failures": managed.circuit.failures,
                "last_error": error,
            },
        )

    # ---- provisioning ------------------------------------------------------------

    async def _plan(self) -> list[tuple[Managed, dict[str, Any], str]]:
        """Decide and claim, under the lock: the rows (and tokens) of the workers to start."""
        now = time.monotonic()
        planned: list[tuple[Managed, dict[str, Any], str]] = []
        async with self.db.transaction() as tx:
            lock = await tx.one("scaler_lock")
            if lock is None or not lock["locked"]:
                return []  # another replica is deciding now
            facts = await tx.all("scaler_facts", {"limit": _WAITING_LIMIT})
            waiting = [
                WaitingJob(r["id"], dict(r["selector"])) for r in facts if r["kind"] == "waiting"
            ]
            if not waiting:
                return []
            capacity = [
                Capacity(dict(r["labels"]), r["free_slots"])
                for r in facts
                if r["kind"] == "capacity"
            ]
            live = {r["provider"]: r["n"] for r in await tx.all("scaler_live_counts")}
            views = [
                ProviderView(
                    name,
                    m.config.priority,
                    dict(m.config.tags),
                    m.config.max_workers,
                    live.get(name, 0),
                    m.config.slots,
                    m.health.ok,
                    m.circuit.is_open(now),
                )
                for name, m in self.managed.items()
            ]
            decisions = plan_provisioning(waiting, capacity, views, _ROUND_PROVISIONS)
            for decision in decisions:
                managed = self.managed[decision.provider]
                row_id = uuid.uuid4()
                name = f"{decision.provider}-{row_id.hex[:10]}"
                token_id, token = await self._mint_token(tx, name)
                row = await tx.one(
                    "insert_provisioned_worker",
                    {
                        "id": row_id,
                        "provider": decision.provider,
                        "provider_type": managed.config.type,
                        "worker_name": name,
                        "labels": Jsonb(decision.labels),
                        "slots": decision.slots,
                        "job_id": decision.job_id,
                        "token_id": token_id,
                    },
                )
                assert row is not None
                planned.append((managed, row, token))
        return planned

    async def _mint_token(self, tx: Tx, worker_name: str) -> tuple[uuid.UUID | None, str]:
        """A worker token that registers one worker, within token_ttl; none when the
        server runs without authentication. Revoked when the worker is removed."""
        if not self.settings.auth.enabled:
            return None, ""
        info, token = await create_token(
            tx,
            f"provisioned.{worker_name}",
            Role.WORKER,
            max_registrations=1,
            register_within=self.settings.scaling.token_ttl,
        )
        return info.id, token

    async def _provision(self, managed: Managed, row: dict[str, Any], token: str) -> None:
        config = managed.config
        request = ProvisionRequest(
            token=token,
            server_address=self.server_address,
            worker_name=row["worker_name"],
            slots=row["slots"],
            labels=dict(row["labels"]),
            job_id=row["job_id"],
        )
        began = time.monotonic()
        try:
            worker = await asyncio.wait_for(managed.provider.provision(request), _PROVISION_TIMEOUT)
        except Exception as exc:
            error = (
                f"no answer in {_PROVISION_TIMEOUT:.0f} s"
                if isinstance(exc, TimeoutError)
                else first_line(exc) or type(exc).__name__
            )
            opened = managed.circuit.failure(time.monotonic(), error)
            async with self.db.transaction() as tx:
                if await tx.one("provisioned_failed", {"id": row["id"], "error": error}):
                    await self._revoke(tx, row["token_id"])
                    await record(
                        tx,
                        [
                            provisioning_event(
                                EventType.PROVISIONING_FAILED,
                                row["id"],
                                self.actor,
                                provider=config.name,
                                provider_type=config.type,
                                worker_name=row["worker_name"],
                                job_id=row["job_id"],
                                stage="provision",
                                error=error,
                                circuit_open=managed.circuit.is_open(time.monotonic()),
                            )
                        ],
                    )
                await self._record_status(tx, managed, error)
            logger.warning(
                "provider %s could not start a worker: %s%s",
                config.name,
                error,
                "; circuit open" if opened else "",
                extra={"provider": config.name, "worker_name": row["worker_name"]},
            )
            return
        managed.circuit.success()
        async with self.db.transaction() as tx:
            started = await tx.one(
                "provisioned_started", {"id": row["id"], "handle": worker.handle}
            )
            if started is not None:
                await record(
                    tx,
                    [
                        provisioning_event(
                            EventType.WORKER_PROVISIONED,
                            row["id"],
                            self.actor,
                            provider=config.name,
                            provider_type=config.type,
                            worker_name=row["worker_name"],
                            handle=worker.handle,
                            job_id=row["job_id"],
                            seconds=round(time.monotonic() - began, 3),
                        )
                    ],
                )
            await self._record_status(tx, managed)
        if started is None:  # given up meanwhile (a very slow provider): not kept
            await self._terminate(managed, worker.handle)
            return
        logger.info(
            "provider %s started worker %s",
            config.name,
            row["worker_name"],
            extra={"provider": config.name, "worker_name": row["worker_name"]},
        )

    # ---- scaling down and cleaning up -----------------------------------------------

    async def _scale_down(self) -> None:
        async with self.db.connection() as tx:
            rows = await tx.all("scaler_idle_workers")
        by_id = {r["id"]: r for r in rows}
        ttl = {name: m.config.idle_ttl for name, m in self.managed.items()}
        idle = [IdleWorker(r["id"], r["provider"], r["idle_seconds"]) for r in rows]
        for provisioned_id in plan_scale_down(idle, ttl):
            row = by_id[provisioned_id]
            if await self._drain_idle(row):
                managed = self.managed.get(row["provider"])
                if managed is not None and row["handle"]:
                    await self._terminate(managed, row["handle"])

    async def _drain_idle(self, row: dict[str, Any]) -> bool:
        """DRAINING (no job is given to it any more) and REMOVED, with their events, in
        one transaction; False when it took a job meanwhile."""
        worker_id = row["worker_id"]
        async with self.db.transaction() as tx:
            if await tx.one("lock_idle_worker", {"id": worker_id}) is None:
                return False
            removed = await tx.one("provisioned_removed", {"id": row["id"]})
            if removed is None:
                return False  # another replica scaled it down
            await self._revoke(tx, removed["token_id"])
            await tx.one("set_worker_state", {"id": worker_id, "state": str(WorkerState.DRAINING)})
            await record(
                tx,
                [
                    worker_event(
                        EventType.WORKER_DRAINING,
                        worker_id,
                        self.actor,
                        previous=str(WorkerState.READY),
                        running_jobs=0,
                        reason="scaled down",
                    ),
                    provisioning_event(
                        EventType.WORKER_SCALED_DOWN,
                        row["id"],
                        self.actor,
                        provider=row["provider"],
                        worker_id=worker_id,
                        handle=row["handle"],
                        idle_seconds=round(row["idle_seconds"], 1),
                        job_id=row["job_id"],
                        reason="idle",
                    ),
                ],
            )
        logger.info(
            "worker %s idle for %.0f s: scaled down",
            worker_id,
            row["idle_seconds"],
            extra={"worker_id": str(worker_id), "provider": row["provider"]},
        )
        return True

    async def _clean_up(self) -> None:
        async with self.db.transaction() as tx:
            ended = await tx.all("scaler_ended_workers")
            for r in ended:
                await self._revoke(tx, r["token_id"])
            await record(
                tx,
                [
                    provisioning_event(
                        EventType.WORKER_SCALED_DOWN,
                        r["id"],
                        self.actor,
                        provider=r["provider"],
                        worker_id=r["worker_id"],
                        handle=r["handle"],
                        job_id=r["job_id"],
                        reason=f"worker {str(r['worker_state']).lower()}",
                    )
                    for r in ended
                ],
            )
            stale = await tx.all(
                "scaler_unregistered", {"timeout": self.settings.scaling.register_timeout}
            )
            gave_up = []
            for r in stale:
                error = (
                    f"the worker did not register within "
                    f"{self.settings.scaling.register_timeout:.0f} s"
                )
                if await tx.one("provisioned_failed", {"id": r["id"], "error": error}):
                    await self._revoke(tx, r["token_id"])
                    gave_up.append(r)
                    await record(
                        tx,
                        [
                            provisioning_event(
                                EventType.PROVISIONING_FAILED,
                                r["id"],
                                self.actor,
                                provider=r["provider"],
                                provider_type=r["provider_type"],
                                worker_name=r["worker_name"],
                                job_id=r["job_id"],
                                stage="register",
                                error=error,
                            )
                        ],
                    )
        for r in [*ended, *gave_up]:
            managed = self.managed.get(r["provider"])
            if managed is not None and r["handle"]:
                await self._terminate(managed, r["handle"])

    async def _revoke(self, tx: Tx, token_id: uuid.UUID | None) -> None:
        """The token of a provisioned worker that is gone, or never came: no use left."""
        if token_id is not None:
            await tx.execute("revoke_provisioned_token", {"id": token_id})

    async def _terminate(self, managed: Managed, handle: str) -> None:
        try:
            await managed.provider.terminate(handle)
        except Exception as exc:
            logger.warning(
                "provider %s could not remove %s: %s",
                managed.config.name,
                handle,
                first_line(exc),
                extra={"provider": managed.config.name},
            )
