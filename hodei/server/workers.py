"""Worker lifecycle services: register, connect (Hello), heartbeat, draining,
disconnect, LOST and TERMINATED. Each transition is one transaction with its events."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from psycopg.types.json import Jsonb

from hodei.db.connector import Database
from hodei.domain.auth import secret_matches
from hodei.domain.events import EventType
from hodei.domain.jobs import JobState
from hodei.domain.workers import WorkerState, check_slots, check_transition, occupancy_state
from hodei.errors import InvalidArgument, NotFound, PermissionDenied
from hodei.server.events import Event, record, worker_event
from hodei.server.models import AttemptRef, WorkerRecord
from hodei.server.occupancy import sync_worker
from hodei.server.transitions import lock_job, requeue_locked, requeue_lost_jobs
from hodei.settings import Settings

logger = logging.getLogger(__name__)

#: Most jobs a worker may hold beyond its slots (Hello.prefetch; as HODEI_WORKER_PREFETCH).
_MAX_PREFETCH = 1024


class WorkerService:
    def __init__(self, db: Database, settings: Settings, server_id: str) -> None:
        self.db = db
        self.settings = settings
        self.server_id = server_id
        #: How many worker messages (heartbeats, acks, starts...) this server could not
        #: store because the database was away: the recovery loop treats a rise as a
        #: break in what it could have seen (a restart of PostgreSQL can be shorter than
        #: any of its own sweeps notices).
        self.unstored_messages = 0

    def note_unstored(self) -> None:
        self.unstored_messages += 1

    async def register(
        self,
        name: str,
        hostname: str,
        pid: int | None,
        slots: int,
        version: str,
        labels: dict[str, str],
        token_id: uuid.UUID | None = None,
        secret_hash: bytes | None = None,
    ) -> WorkerRecord:
        """A new identity (CREATING): not assignable until its stream says Hello, which
        must come with the same token (`token_id`) and the registration's secret."""
        slots = check_slots(slots)
        if len(name) > 200 or len(hostname) > 255:
            raise InvalidArgument("worker name or hostname too long")
        worker_id = uuid.uuid4()
        async with self.db.transaction() as tx:
            if token_id is not None:
                use = await tx.one("use_token_for_registration", {"id": token_id})
                if use is not None and not use["registered"]:
                    raise PermissionDenied(
                        f"token {use['name']!r} has already registered its worker (a "
                        "provisioned worker's token is single-use)"
                        if use["used_up"]
                        else f"token {use['name']!r} may no longer register a worker "
                        "(its time to register has passed)"
                    )
            row = await tx.one(
                "insert_worker",
                {
                    "id": worker_id,
                    "name": name,
                    "hostname": hostname,
                    "pid": pid or None,
                    "version": version,
                    "labels": Jsonb(labels),
                    "slots": slots,
                    "token_id": token_id,
                    "secret_hash": secret_hash,
                },
            )
            assert row is not None
            provisioned = await tx.one(
                "link_provisioned_worker", {"worker_id": worker_id, "name": name}
            )
            if provisioned is not None:
                row = {**row, "provider": provisioned["provider"]}
            await record(
                tx,
                [
                    worker_event(
                        EventType.WORKER_REGISTERED,
                        worker_id,
                        f"worker:{worker_id}",
                        name=name,
                        hostname=hostname,
                        slots=slots,
                        state=str(WorkerState.CREATING),
                        **({"provider": provisioned["provider"]} if provisioned else {}),
                    )
                ],
            )
        logger.info("worker registered", extra={"worker_id": str(worker_id)})
        return WorkerRecord.from_row(row)

    async def connect(
        self,
        worker_id: uuid.UUID,
        running: list[AttemptRef],
        slots: int,
        sent_at: datetime | None = None,
        prefetch: int = 0,
    ) -> tuple[WorkerRecord, list[AttemptRef]]:
        """Hello: the stream is open on this server, so the worker becomes assignable.

        Attempts the worker still holds and that are still its current ones are kept;
        the others are returned as superseded (the worker kills them). Jobs the server
        thinks the worker holds but the worker no longer reports are requeued.
        """
        actor = f"worker:{worker_id}"
        slots = check_slots(slots, zero_means=None)  # 0: keep the registered number
        async with self.db.transaction() as tx:
            existing = await tx.one("get_worker", {"id": worker_id})
            if existing is None or existing["state"] == WorkerState.TERMINATED:
                raise NotFound(f"worker {worker_id} is not registered")
            held = {(r.job_id, r.attempt) for r in running}
            superseded: list[AttemptRef] = []
            events: list[Event] = []
            for ref in running:
                # Read only: locking a PENDING job here could deadlock with the dispatcher.
                row = await tx.one("get_job", {"id": ref.job_id})
                if row is None or not (
                    row["attempts"] == ref.attempt
                    and row["worker_id"] == worker_id
                    and JobState(row["state"]).is_active
                ):
                    superseded.append(ref)
            for row in await tx.all("worker_jobs", {"worker_id": worker_id}):
                if (row["id"], row["attempts"]) not in held:
                    job = await lock_job(tx, row["id"])
                    await requeue_locked(tx, job, "worker reconnected without the job", actor)
            worker = await tx.one("lock_worker", {"id": worker_id})
            if worker is None:
                # Deleted meanwhile by retention (a registration that waited too long).
                raise NotFound(f"worker {worker_id} is not registered")
            state = WorkerState(worker["state"])
            active = await tx.all("worker_jobs", {"worker_id": worker_id})
            slots = max(slots or worker["slots"], 1)
            new_state = state
            if state in (WorkerState.CREATING, WorkerState.LOST):
                check_transition(state, WorkerState.READY)
            # Bounded like the slots: a Hello is input like any other.
            prefetch = min(max(prefetch, 0), _MAX_PREFETCH)
            if state != WorkerState.DRAINING:
                new_state = occupancy_state(len(active), slots + prefetch)
            row = await tx.one(
                "connect_worker",
                {
                    "id": worker_id,
                    "state": str(new_state),
                    "running_jobs": len(active),
                    "current_job_id": active[0]["id"] if active else None,
                    "slots": slots,
                    "prefetch": prefetch,
                    "server_id": self.server_id,
                    "sent_at": sent_at,
                },
            )
            assert row is not None
            if state in (WorkerState.CREATING, WorkerState.LOST):
                events.append(
                    worker_event(
                        EventType.WORKER_READY,
                        worker_id,
                        actor,
                        previous=str(state),
                        server_id=self.server_id,
                    )
                )
            await record(tx, events)
        logger.info(
            "worker connected (%s -> %s), %d attempts kept, %d superseded",
            state,
            row["state"],
            len(active),
            len(superseded),
            extra={"worker_id": str(worker_id), "server_id": self.server_id},
        )
        return WorkerRecord.from_row(row), superseded

    async def heartbeat(self, worker_id: uuid.UUID, sent_at: datetime | None = None) -> None:
        """`sent_at`: the worker's clock when it sent the heartbeat; the database stores
        its skew from its own clock (None: an older worker, nothing measured)."""
        async with self.db.connection() as tx:
            await tx.execute(
                "heartbeat_worker",
                {"id": worker_id, "server_id": self.server_id, "sent_at": sent_at},
            )

    async def set_prefetch(self, worker_id: uuid.UUID, prefetch: int) -> None:
        """The worker asks for another prefetch (Heartbeat.prefetch): its capacity for
        dispatch changes, and READY/BUSY with it (with the event, as any change)."""
        prefetch = min(max(prefetch, 0), _MAX_PREFETCH)
        async with self.db.transaction() as tx:
            updated = await tx.one(
                "set_worker_prefetch",
                {"id": worker_id, "server_id": self.server_id, "prefetch": prefetch},
            )
            if updated is None:
                return  # not streaming to this server any more
            await record(tx, await sync_worker(tx, worker_id, f"worker:{worker_id}"))

    async def disconnect(self, worker_id: uuid.UUID) -> None:
        """The stream ended: not assignable any more; its jobs wait for the heartbeat
        deadline (the worker usually reconnects well before)."""
        async with self.db.connection() as tx:
            await tx.execute("disconnect_worker", {"id": worker_id, "server_id": self.server_id})
        logger.info("worker disconnected", extra={"worker_id": str(worker_id)})

    async def disconnect_all(self) -> None:
        async with self.db.connection() as tx:
            await tx.execute("disconnect_server_workers", {"server_id": self.server_id})

    async def drain(self, worker_id: uuid.UUID) -> bool:
        """The worker is stopping (it said Draining): READY/BUSY -> DRAINING, so no job is
        assigned to it any more; the jobs it runs stay with it until they end."""
        async with self.db.transaction() as tx:
            row = await tx.one("lock_worker", {"id": worker_id})
            if row is None:
                raise NotFound(f"worker {worker_id} is not registered")
            state = WorkerState(row["state"])
            if state not in (WorkerState.READY, WorkerState.BUSY):
                return False  # already DRAINING, or gone: nothing to record
            check_transition(state, WorkerState.DRAINING)
            await tx.one("set_worker_state", {"id": worker_id, "state": str(WorkerState.DRAINING)})
            await record(
                tx,
                [
                    worker_event(
                        EventType.WORKER_DRAINING,
                        worker_id,
                        f"worker:{worker_id}",
                        previous=str(state),
                        running_jobs=row["running_jobs"],
                    )
                ],
            )
        logger.info("worker draining", extra={"worker_id": str(worker_id)})
        return True

    async def mark_gone(self, worker_id: uuid.UUID, target: WorkerState, reason: str) -> bool:
        """LOST (silent) or TERMINATED: its jobs go back to the queue or fail."""
        actor = "recovery" if target == WorkerState.LOST else f"worker:{worker_id}"
        async with self.db.transaction() as tx:
            current = await tx.one("get_worker", {"id": worker_id})
            if current is None:
                raise NotFound(f"worker {worker_id} is not registered")
            state = WorkerState(current["state"])
            if (
                target == WorkerState.LOST
                and state == WorkerState.DRAINING
                and not await tx.all("worker_jobs", {"worker_id": worker_id})
            ):
                # It said it was stopping (Draining) and holds no job: a clean stop whose
                # Goodbye never arrived (its server went away meanwhile, or the flush
                # timed out), not a lost worker; hodei-diagnose does not report it.
                target = WorkerState.TERMINATED
                reason = f"stopped after draining, no Goodbye received ({reason})"
            if state == target:
                return False
            check_transition(state, target)
            # Jobs before the worker row: the lock order is job, then worker.
            await requeue_lost_jobs(tx, worker_id, reason, actor)
            await tx.one("lock_worker", {"id": worker_id})
            await tx.one(
                "update_worker",
                {"id": worker_id, "state": str(target), "running_jobs": 0, "current_job_id": None},
            )
            await tx.execute(
                "disconnect_worker", {"id": worker_id, "server_id": current["server_id"]}
            )
            event_type = (
                EventType.WORKER_LOST if target == WorkerState.LOST else EventType.WORKER_TERMINATED
            )
            await record(
                tx, [worker_event(event_type, worker_id, actor, previous=str(state), reason=reason)]
            )
        # A worker that said goodbye is news, not trouble; a lost one is trouble.
        log = logger.warning if target == WorkerState.LOST else logger.info
        log("worker %s: %s", str(target).lower(), reason, extra={"worker_id": str(worker_id)})
        return True

    async def check_binding(
        self, worker_id: uuid.UUID, token_id: uuid.UUID | None, secret: str
    ) -> None:
        """A Hello speaks for `worker_id` only with the token that registered it and the
        secret Register returned; else PermissionDenied, before anything is changed."""
        async with self.db.connection() as tx:
            row = await tx.one("worker_binding", {"id": worker_id})
        if row is None or row["state"] == WorkerState.TERMINATED:
            raise NotFound(f"worker {worker_id} is not registered")
        if row["secret_hash"] is None:
            # Registered before workers had secrets: it registers again.
            raise NotFound(f"worker {worker_id} is not registered with a session secret")
        if row["token_id"] is not None and row["token_id"] != token_id:
            raise PermissionDenied(
                f"worker {worker_id} was registered with another token; register your own"
            )
        if not secret_matches(secret, row["secret_hash"]):
            raise PermissionDenied(f"wrong session secret for worker {worker_id}")

    async def get(self, worker_id: uuid.UUID) -> WorkerRecord:
        async with self.db.connection() as tx:
            row = await tx.one("get_worker", {"id": worker_id})
        if row is None:
            raise NotFound(f"worker {worker_id} is not registered")
        return WorkerRecord.from_row(row)

    async def list(
        self, include_gone: bool = False, owner: uuid.UUID | None = None
    ) -> list[WorkerRecord]:
        """The workers; each one's running jobs only `owner`'s when given."""
        async with self.db.connection() as tx:
            rows = await tx.all("list_workers", {"include_gone": include_gone, "owner": owner})
        return [WorkerRecord.from_row(r) for r in rows]
