"""HodeiError -> gRPC status, in one place, for every servicer method.

Users get a one-line message; an unexpected exception is logged with its
traceback here and answered INTERNAL without leaking it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc

from hodei.db.connector import DATABASE_DOWN
from hodei.errors import HodeiError
from hodei.log_context import job_context

logger = logging.getLogger(__name__)

T = TypeVar("T")


def status_for(err: HodeiError) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, err.code, grpc.StatusCode.INTERNAL)


def one_line(text: str) -> str:
    return " ".join(text.split())[:500]


async def abort_for(exc: BaseException, context: grpc.aio.ServicerContext, where: str) -> NoReturn:
    if isinstance(exc, HodeiError):
        await context.abort(status_for(exc), one_line(str(exc)))
    if isinstance(exc, DATABASE_DOWN):
        # A warning: the database watch says the outage once, loudly; each call failed
        # during it is one line, never a traceback.
        logger.warning("%s: database unavailable: %s", where, one_line(str(exc)))
        await context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable")
    logger.error("%s failed", where, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {where}; see the server log")
    raise AssertionError("context.abort returned")  # it always raises


def unary(
    fn: Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[T]],
) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[T]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        # A call about one job (GetJob, CancelJob...): its lines, a failure's too, name it.
        job_id = getattr(request, "job_id", "")
        scope = job_context(job_id) if job_id else contextlib.nullcontext()
        with scope:
            try:
                return await fn(self, request, context)
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception as exc:
                await abort_for(exc, context, fn.__name__)

    return wrapper


def server_stream(
    fn: Callable[[Any, Any, grpc.aio.ServicerContext], AsyncIterator[T]],
) -> Callable[[Any, Any, grpc.aio.ServicerContext], AsyncIterator[T]]:
    @functools.wraps(fn)
    async def wrapper(
        self: Any, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[T]:
        try:
            async for item in fn(self, request, context):
                yield item
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await abort_for(exc, context, fn.__name__)

    return wrapper
