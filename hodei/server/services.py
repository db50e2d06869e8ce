"""The set of services one server process runs, built once by ServerApp."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hodei.db.connector import Database
from hodei.server.jobs import JobService
from hodei.server.logs import LogBus, LogService
from hodei.server.runs import RunPusher
from hodei.server.sessions import SessionRegistry
from hodei.server.status import ServerStatus
from hodei.server.submission import Submission
from hodei.server.workers import WorkerService
from hodei.settings import Settings


@dataclass
class Services:
    settings: Settings
    server_id: str
    started_at: datetime
    db: Database
    jobs: JobService
    workers: WorkerService
    logs: LogService
    bus: LogBus
    registry: SessionRegistry
    status: ServerStatus
    pusher: RunPusher
    submission: Submission

    @classmethod
    def build(
        cls, settings: Settings, server_id: str, started_at: datetime, db: Database
    ) -> Services:
        jobs = JobService(db, settings, server_id)
        bus = LogBus()
        registry = SessionRegistry()
        pusher = RunPusher(jobs, registry)
        return cls(
            settings=settings,
            server_id=server_id,
            started_at=started_at,
            db=db,
            jobs=jobs,
            workers=WorkerService(db, settings, server_id, jobs),
            logs=LogService(db, bus),
            bus=bus,
            registry=registry,
            status=ServerStatus(db, server_id),
            pusher=pusher,
            submission=Submission(settings, db, jobs, registry, pusher),
        )
