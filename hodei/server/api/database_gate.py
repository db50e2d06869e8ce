"""While the database watch finds the database unreachable, calls fail at once with
UNAVAILABLE and one line, instead of waiting on the connection pool until their
deadline. The health service and reflection stay open: they are how one sees it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from hodei.server.api import reflection

#: Services that answer without the database.
_OPEN = frozenset({"grpc.health.v1.Health", *reflection.SERVICE_NAMES})
MESSAGE = "the server cannot reach its database; retry later"


class DatabaseGate(grpc.aio.ServerInterceptor):
    def __init__(self, reachable: Callable[[], bool]) -> None:
        self.reachable = reachable

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        service = str(handler_call_details.method).strip("/").split("/")[0]
        if handler is None or service in _OPEN or self.reachable():
            return handler
        return refusing(handler, grpc.StatusCode.UNAVAILABLE, MESSAGE)


def refusing(handler: Any, code: grpc.StatusCode, message: str) -> Any:
    """A handler of the same kind and codecs as `handler` that answers `code`."""

    async def _refuse(context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, message)

    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await _refuse(context)

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await _refuse(context)
        yield  # pragma: no cover - abort raises; this makes it an async generator

    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary, **codecs)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming, **codecs)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary, **codecs)
    return grpc.stream_stream_rpc_method_handler(streaming, **codecs)
