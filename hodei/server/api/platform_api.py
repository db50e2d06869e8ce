"""PlatformService: queue and server views for operators and diagnostics."""

from __future__ import annotations

import grpc

from hodei.api.v1 import platform_pb2, platform_pb2_grpc
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
        return queue_to_proto(
            await self.services.job_reads.queue_view(min(request.limit or 20, 1000))
        )

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
