"""Requests that cannot be decoded get INVALID_ARGUMENT with one line, not UNKNOWN.

grpc-python decodes a request with the handler's deserializer before any servicer
code runs; when that raises, grpc answers UNKNOWN and logs a traceback per call. This
interceptor gives each handler a deserializer that returns an `Undecodable` instead
of raising: unary requests are then refused here, and streaming servicers (the worker
stream) see the value and end the call with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Undecodable:
    """What a request that could not be decoded reads as."""

    message_type: str
    size: int

    @property
    def reason(self) -> str:
        return f"request could not be decoded as {self.message_type} ({self.size} bytes)"


def message_type_of(deserializer: Callable[[bytes], Any]) -> str:
    """The protobuf name a generated deserializer (`Message.FromString`) decodes."""
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", "") or "the request message")


def tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    name = message_type_of(deserializer)

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:
            return Undecodable(name, len(data))

    return decode


async def _refuse(request: Undecodable, context: grpc.aio.ServicerContext, method: str) -> None:
    logger.warning("%s: %s", method, request.reason, extra={"method": method})
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)


class DecodingGuard(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        method = str(handler_call_details.method)
        decode = tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if isinstance(request, Undecodable):
                    await _refuse(request, context, method)
                return await inner_unary(request, context)

            return handler._replace(request_deserializer=decode, unary_unary=unary)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def streaming(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                if isinstance(request, Undecodable):
                    await _refuse(request, context, method)
                async for item in inner_stream(request, context):
                    yield item

            return handler._replace(request_deserializer=decode, unary_stream=streaming)
        # Client-streaming calls read the Undecodable themselves (WorkerStream).
        return handler._replace(request_deserializer=decode)
