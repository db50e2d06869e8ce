"""The set of services one server process runs, built once by ServerApp."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hodei.db.connector import Database
from hodei.providers.config import ProviderConfig
from hodei.server.assignment import Assigner, RunPusher
from hodei.server.job_reads import JobReads
from hodei.server.logs import LogBus, LogService
from hodei.server.results import WorkerResults
from hodei.server.secret_box import SecretBox
from hodei.server.sessions import SessionRegistry
from hodei.server.status import ServerStatus
from hodei.server.submission import Submission
from hodei.server.transitions import JobTransitions
from hodei.server.workers import WorkerService
from hodei.settings import Settings


@dataclass
class Services:
    settings: Settings
    server_id: str
    started_at: datetime
    db: Database
    job_reads: JobReads
    transitions: JobTransitions
    assigner: Assigner
    results: WorkerResults
    workers: WorkerService
    logs: LogService
    bus: LogBus
    registry: SessionRegistry
    status: ServerStatus
    pusher: RunPusher
    submission: Submission
    #: The entries of this server's providers file (none: no scaler here).
    provider_configs: tuple[ProviderConfig, ...] = ()

    @classmethod
    def build(
        cls, settings: Settings, server_id: str, started_at: datetime, db: Database
    ) -> Services:
        transitions = JobTransitions(db)
        assigner = Assigner(db, settings, server_id)
        bus = LogBus()
        registry = SessionRegistry()
        box = SecretBox(settings.server.secret_key, settings.server.previous_secret_key_list)
        pusher = RunPusher(transitions, registry, box, settings.tracing.enabled)
        return cls(
            settings=settings,
            server_id=server_id,
            started_at=started_at,
            db=db,
            job_reads=JobReads(db),
            transitions=transitions,
            assigner=assigner,
            results=WorkerResults(db, transitions, settings.tracing.enabled),
            workers=WorkerService(db, settings, server_id),
            logs=LogService(db, bus),
            bus=bus,
            registry=registry,
            status=ServerStatus(db, server_id, settings.faults.clock_offset_s),
            pusher=pusher,
            submission=Submission(settings, db, assigner, registry, pusher, box),
        )
