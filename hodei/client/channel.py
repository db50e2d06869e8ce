"""The options of every channel to a Hodei server: the CLI's client and the worker's
stream. The server's side (hodei.server.app.grpc_server_options) is a different list:
it sets what the server accepts from its peers, not how a channel behaves."""

from __future__ import annotations

from typing import Any

import grpc

from hodei.domain.auth import METADATA_KEY

MIB = 1024 * 1024


def channel_options(
    keepalive_time_ms: int = 10_000,
    keepalive_timeout_ms: int = 60_000,
    *,
    max_receive_bytes: int = 64 * MIB,
    max_send_bytes: int | None = None,
    reconnect_max_backoff_ms: int | None = None,
) -> list[tuple[str, int]]:
    """HTTP/2 keepalive, within what the server permits (pings >= 5 s apart): without
    it an idle stream (a worker's, a long `logs -f` on a quiet job) is cut by the peer
    or a middlebox (the original platform's `h2 protocol error` every 30 s).

    `reconnect_max_backoff_ms` also makes grpc reconnect quickly once the server is
    back (for a caller that paces its own retries, like the worker)."""
    options = [
        ("grpc.keepalive_time_ms", keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    if reconnect_max_backoff_ms is not None:
        options += [
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", max(reconnect_max_backoff_ms, 100)),
        ]
    options.append(("grpc.max_receive_message_length", max_receive_bytes))
    if max_send_bytes is not None:
        options.append(("grpc.max_send_message_length", max_send_bytes))
    return options


def token_metadata(token: str) -> tuple[tuple[str, str], ...] | None:
    """The metadata of every call made with `token` (None without one): `authorization:
    Bearer <token>`. Metadata rather than call credentials: those need a TLS channel, and
    a token must work on a plain one too (loopback, a private network). The client and
    the worker pass it per call, not through channel interceptors: grpc.aio wraps an
    intercepted stream in extra tasks and queues, which cost the worker stream
    milliseconds per message."""
    return ((METADATA_KEY, f"Bearer {token}"),) if token else None


def token_interceptors(token: str) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that send the token on every call of a raw channel (tests, tools
    that use the generated stubs directly); none without a token."""
    if not token:
        return []
    metadata = ((METADATA_KEY, f"Bearer {token}"),)
    return [
        _UnaryUnary(metadata),
        _UnaryStream(metadata),
        _StreamUnary(metadata),
        _StreamStream(metadata),
    ]


def _with_token(details: grpc.aio.ClientCallDetails, extra: tuple[tuple[str, str], ...]) -> Any:
    metadata = grpc.aio.Metadata(*(details.metadata or ()), *extra)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _Token:
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata


class _UnaryUnary(_Token, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self.metadata), request)


class _UnaryStream(_Token, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_token(details, self.metadata), request)


class _StreamUnary(_Token, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_token(details, self.metadata), requests)


class _StreamStream(_Token, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_token(details, self.metadata), requests)
