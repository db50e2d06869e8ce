"""hodei_grpc_server_handled_total and hodei_grpc_server_handling_seconds: every call
this server completes, by service, method and final status code, with its duration.

The outermost interceptor, so it also counts the calls the others refuse (the database
gate's UNAVAILABLE, authentication's UNAUTHENTICATED, an undecodable request's
INVALID_ARGUMENT). A streaming call counts once, when it ends: a worker's stream shows
up when the worker leaves, with the code it ended with.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from hodei.metrics import ServerMetrics


def _final_code(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    """The status the client receives: the one an abort or set_code chose; OK for a
    normal end; CANCELLED for a call cancelled under us (the client left, a deadline);
    UNKNOWN for anything else raised (grpc's own answer)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if error is None:
        return grpc.StatusCode.OK.name
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED.name
    return grpc.StatusCode.UNKNOWN.name


class _Method:
    """One method's label children, looked up once: the hot path is two updates."""

    def __init__(self, metrics: ServerMetrics, full_name: str) -> None:
        service, _, method = full_name.strip("/").partition("/")
        self.metrics = metrics
        self.service = service
        self.method = method
        self.seconds = metrics.grpc_seconds.labels(service, method)
        self._handled: dict[str, Any] = {}

    def done(
        self, began: float, context: grpc.aio.ServicerContext, error: BaseException | None
    ) -> None:
        self.seconds.observe(time.perf_counter() - began)
        code = _final_code(context, error)
        counter = self._handled.get(code)
        if counter is None:
            counter = self._handled[code] = self.metrics.grpc_handled.labels(
                self.service, self.method, code
            )
        counter.inc()


class CallMetrics(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics
        self._methods: dict[str, _Method] = {}

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # grpc answers UNIMPLEMENTED itself
        name = str(handler_call_details.method)
        method = self._methods.get(name)
        if method is None:
            method = self._methods[name] = _Method(self.metrics, name)
        for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                return handler._replace(**{kind: _measured(behaviour, method)})
        return handler


def _measured(behaviour: Callable[..., Any], method: _Method) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behaviour):

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            began = time.perf_counter()
            error: BaseException | None = None
            try:
                async for item in behaviour(request, context):
                    yield item
            except BaseException as exc:
                error = exc
                raise
            finally:
                method.done(began, context, error)

        return streaming

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        began = time.perf_counter()
        error: BaseException | None = None
        try:
            return await behaviour(request, context)
        except BaseException as exc:
            error = exc
            raise
        finally:
            method.done(began, context, error)

    return call
