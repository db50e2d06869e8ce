"""PlatformService: queue and server views for operators and diagnostics."""

from __future__ import annotations

import grpc

from hodei.api.v1 import platform_pb2, platform_pb2_grpc
from hodei.server.api.auth import current_caller
from hodei.server.api.convert import queue_to_proto, ts
from hodei.server.api.status_codes import unary
from hodei.server.services import Services


class PlatformServicer(platform_pb2_grpc.PlatformServiceServicer):
    def __init__(self, services: Services) -> None:
        self.services = services

    @unary
    async def GetQueue(
        self, request: platform_pb2.GetQueueRequest, context: grpc.aio.ServicerContext
    ) -> platform_pb2.GetQueueResponse:
        limit = min(request.limit or 20, 1000)
        owner = current_caller().owner_filter()
        return queue_to_proto(await self.services.job_reads.queue_view(limit, owner))

    @unary
    async def ListProviders(
        self, request: platform_pb2.ListProvidersRequest, context: grpc.aio.ServicerContext
    ) -> platform_pb2.ListProvidersResponse:
        async with self.services.db.connection() as tx:
            rows = {r["provider"]: r for r in await tx.all("provider_overview")}
        configs = {c.name: c for c in self.services.provider_configs}
        providers = []
        # This server's entries first (in priority order), then those only other
        # replicas (or an earlier file) reported.
        for name in [*configs, *(n for n in rows if n not in configs)]:
            row, config = rows.get(name), configs.get(name)
            providers.append(
                platform_pb2.Provider(
                    name=name,
                    type=config.type if config else row["provider_type"] if row else "",
                    priority=config.priority if config else 0,
                    max_workers=config.max_workers if config else 0,
                    tags=dict(config.tags) if config else {},
                    healthy=bool(row and row["healthy"]),
                    detail=row["detail"] if row else "not checked yet",
                    circuit_open=bool(row and row["circuit_open"]),
                    last_error=(row["last_error"] or "") if row else "",
                    last_error_at=ts(row["last_error_at"]) if row else None,
                    checked_at=ts(row["checked_at"]) if row else None,
                    workers=row["workers"] if row else 0,
                )
            )
        return platform_pb2.ListProvidersResponse(providers=providers)

    @unary
    async def GetServerInfo(
        self, request: platform_pb2.GetServerInfoRequest, context: grpc.aio.ServicerContext
    ) -> platform_pb2.GetServerInfoResponse:
        row = await self.services.status.read()
        return platform_pb2.GetServerInfoResponse(
            version=row["version"],
            server_id=self.services.server_id,
            started_at=ts(row["started_at"]),
            dispatcher_enabled=row["dispatcher_enabled"],
            outbox_relay_enabled=row["outbox_relay_enabled"],
            dispatcher_last_cycle_at=ts(row["dispatcher_last_cycle_at"]),
            connected_workers=len(self.services.registry.worker_ids()),
            schema_version=row["schema_version"],
            insecure=not self.services.settings.auth.enabled,
        )
