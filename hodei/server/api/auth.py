"""The one check of every call's credential: a server interceptor.

The token travels in the `authorization` metadata (`Bearer hodei_...`); the role rules
are hodei.domain.auth's. A refusal is UNAUTHENTICATED (no token, or one the server does
not accept) or PERMISSION_DENIED (the role may not call this), with one line. Health and
reflection are open. The servicers read who is calling with `current_caller()`.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from hodei.db.connector import DATABASE_DOWN
from hodei.domain.auth import (
    METADATA_KEY,
    UNAUTHENTICATED_ADMIN,
    Caller,
    authorize,
    bearer,
    is_open,
)
from hodei.errors import HodeiError
from hodei.server.api.database_gate import MESSAGE as DATABASE_MESSAGE
from hodei.server.api.database_gate import refusing
from hodei.server.api.status_codes import one_line, status_for
from hodei.server.tokens import TokenVerifier

logger = logging.getLogger(__name__)

_CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("hodei_caller")


def current_caller() -> Caller:
    """The caller of the call being served (an admin while authentication is off)."""
    return _CALLER.get(UNAUTHENTICATED_ADMIN)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """`verifier` None: authentication is off and every caller is an admin."""

    def __init__(self, verifier: TokenVerifier | None) -> None:
        self.verifier = verifier

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method = str(handler_call_details.method)
        if handler is None or is_open(method) or self.verifier is None:
            return handler
        value = None
        for key, item in handler_call_details.invocation_metadata or ():
            if key == METADATA_KEY:
                value = item if isinstance(item, str) else item.decode(errors="replace")
        try:
            caller = await self.verifier.caller(bearer(value))
            authorize(method, caller)
        except HodeiError as err:
            logger.info("call refused: %s", err, extra={"method": method, "code": err.code.lower()})
            return refusing(handler, status_for(err), one_line(str(err)))
        except DATABASE_DOWN:
            return refusing(handler, grpc.StatusCode.UNAVAILABLE, DATABASE_MESSAGE)
        except Exception:
            # A bug: the caller gets one line, the log the traceback; never let it in.
            logger.exception("token check failed", extra={"method": method})
            return refusing(handler, grpc.StatusCode.INTERNAL, "internal error checking the token")
        return _as(handler, caller)


def _as(handler: Any, caller: Caller) -> Any:
    """The same handler, run with `caller` as current_caller()."""
    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        inner = handler.unary_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            _CALLER.set(caller)
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, **codecs)
    if handler.unary_stream is not None:
        inner_stream = handler.unary_stream

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            _CALLER.set(caller)
            async for item in inner_stream(request, context):
                yield item

        return grpc.unary_stream_rpc_method_handler(streaming, **codecs)
    if handler.stream_unary is not None:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            _CALLER.set(caller)
            return await inner_su(requests, context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **codecs)
    inner_ss = handler.stream_stream
    if inspect.isasyncgenfunction(inner_ss):

        async def stream_gen(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            _CALLER.set(caller)
            async for item in inner_ss(requests, context):
                yield item

        return grpc.stream_stream_rpc_method_handler(stream_gen, **codecs)

    async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        _CALLER.set(caller)
        return await inner_ss(requests, context)

    return grpc.stream_stream_rpc_method_handler(stream_stream, **codecs)
