"""Retrying a submission the server did not answer, with the same idempotency key.

A QueueJob that fails with UNAVAILABLE or runs out its deadline may or may not have
queued its job: the server may have died after its commit, or the answer may have been
lost on the way. Sending the call again with the same idempotency key is safe either
way: the server answers the job the first call queued, or queues it now. So the client
retries those calls, for a bounded time, backing off exponentially (capped, jittered)
so that a fleet of clients does not hammer a server that is coming back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

import grpc
import tenacity

from hodei.client.rpc_errors import is_tls_handshake_failure, translate
from hodei.errors import HodeiError
from hodei.tls import ClientTLS

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long `queue_job` / `queue_jobs` keep retrying, and how they space the tries.

    The first retry waits `initial_backoff`, each next one twice as long up to
    `max_backoff` (plus up to 10 % jitter); no new try starts once `total_seconds` have
    passed since the first (the last one may still run out its own call deadline).
    `total_seconds=0` sends each call once (NO_RETRY)."""

    total_seconds: float = 30.0
    initial_backoff: float = 0.1
    max_backoff: float = 2.0

    def __post_init__(self) -> None:
        if self.total_seconds < 0 or self.initial_backoff <= 0 or self.max_backoff <= 0:
            raise ValueError("a retry policy's durations must be positive")

    @property
    def enabled(self) -> bool:
        return self.total_seconds > 0


NO_RETRY = RetryPolicy(total_seconds=0)
#: What HodeiClient uses unless told otherwise.
DEFAULT_RETRY = RetryPolicy()

#: Retrying QueueJob after either is safe with its key. QueueJobs retries UNAVAILABLE
#: only: a batch that ran out its deadline is usually a server too busy to write it,
#: which another copy of the same batch would only make busier.
QUEUE_JOB_RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
QUEUE_JOBS_RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})


async def call_with_retries(
    call: Callable[[], Awaitable[Any]],
    *,
    policy: RetryPolicy,
    retry_codes: Collection[grpc.StatusCode],
    address: str,
    deadline: float,
    what: str,
    tls: ClientTLS | None = None,
) -> Any:
    """`call()` (a unary RPC sending the same request every time) until it answers,
    fails with a status not in `retry_codes`, or the policy's time is up; a failure
    becomes its HodeiError (saying how long it was retried)."""

    def retryable(exc: BaseException) -> bool:
        return (
            isinstance(exc, grpc.RpcError)
            and exc.code() in retry_codes
            and not is_tls_handshake_failure(exc)
        )

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        code = exc.code().name if isinstance(exc, grpc.RpcError) else "?"
        delay = state.next_action.sleep if state.next_action else 0.0
        logger.info(
            "%s: %s from %s; try %d in %.2f s with the same idempotency key",
            what,
            code,
            address,
            state.attempt_number + 1,
            delay,
            extra={"attempt": state.attempt_number, "grpc_code": code},
        )

    started = time.monotonic()
    tries = 0
    retrying = tenacity.AsyncRetrying(
        # Before, not after: no try starts later than total_seconds after the first.
        stop=tenacity.stop_before_delay(policy.total_seconds),
        wait=tenacity.wait_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff)
        + tenacity.wait_random(0, policy.max_backoff / 10),
        retry=tenacity.retry_if_exception(retryable),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                tries += 1
                return await call()
    except grpc.RpcError as err:
        error = translate(err, address, deadline, tls=tls)
        if tries > 1:
            elapsed = time.monotonic() - started
            error = _with_note(error, f"gave up after {tries} tries in {elapsed:.1f} s")
        raise error from None
    raise AssertionError("tenacity ended without an outcome")  # reraise=True: never


def _with_note(error: HodeiError, note: str) -> HodeiError:
    """The same kind of error (so exit codes and callers' except clauses still match),
    its message followed by `note`."""
    noted = type(error)(f"{error}; {note}")
    return noted
