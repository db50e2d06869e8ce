"""Waits that explain themselves.

Every wait names what it waited for, how long it waited and the last value it
saw; when it gives up it raises :class:`WaitTimeout` with that sentence, which
the plugin records as the step's error and the report quotes verbatim.
Built on tenacity so that the retry policy (fixed short polls, a deadline) is
declared, not hand-rolled.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

T = TypeVar("T")

#: Asked between polls with (what, seconds waited): an exception to give up with now
#: (the run already knows why the wait cannot end well), or None to keep waiting.
GiveUp = Callable[[str, float], BaseException | None]

#: Poll period of every wait: short, because the local platform answers in ms.
DEFAULT_POLL_S = 0.05


class Said(str):
    """What a wait waits for, as English text that also carries a phrase code of the
    report's catalogue (hodei/report/texts `[phrases]`) and its values, so that the
    report can say it in its own language."""

    code: str
    params: dict[str, Any]

    def __new__(cls, code: str, text: str, **params: Any) -> Said:
        obj = super().__new__(cls, text.format(**params))
        obj.code = code
        obj.params = params
        return obj


def phrase_of(what: str) -> dict[str, Any]:
    """The phrase form (code + params) of a wait's `what`."""
    if isinstance(what, Said):
        return {"code": what.code, "params": dict(what.params)}
    return {"code": "TEXT", "params": {"text": str(what)}}


class WaitTimeout(AssertionError):
    """A wait gave up. `str()` says what, how long and the last value seen.

    An AssertionError so that pytest reports it as a failed check, not a crash.
    """

    def __init__(self, what: str, waited_s: float, last: object) -> None:
        self.what = what
        self.waited_s = waited_s
        self.last = last
        super().__init__(f"timed out after {waited_s:.1f}s waiting for {what}; last seen: {last!r}")

    def phrase(self) -> dict[str, Any]:
        return {
            "code": "WAIT_TIMEOUT",
            "params": {
                "waited": f"{self.waited_s:.1f}",
                "what": phrase_of(self.what),
                "last": repr(self.last),
            },
        }


class _Unready(Exception):
    """Internal: the probe raised; keep polling but remember why."""


class _Watch(Generic[T]):
    """One wait's policy and what it has seen so far. :func:`wait_for` and
    :func:`wait_for_async` share it; they differ only in how the probe is called."""

    def __init__(
        self,
        what: str,
        ready: Callable[[T], bool],
        timeout_s: float,
        poll_s: float,
        describe: Callable[[T], object] | None,
        abort_on: tuple[type[Exception], ...],
        give_up: GiveUp | None = None,
    ) -> None:
        self.what = what
        self.ready = ready
        self.describe = describe
        self.abort_on = abort_on
        self.give_up = give_up
        self.last: object = "<no value observed>"
        self.start = time.monotonic()
        #: Keyword arguments of tenacity's Retrying / AsyncRetrying.
        self.policy: dict[str, Any] = {
            "stop": stop_after_delay(timeout_s),
            "wait": wait_fixed(poll_s),
            "retry": retry_if_exception_type(_Unready) | retry_if_result(lambda v: not ready(v)),
            "reraise": False,
        }

    @contextmanager
    def probing(self) -> Iterator[None]:
        """Around one probe call: an error (but those of `abort_on`) is "not yet"."""
        try:
            yield
        except self.abort_on:
            raise
        except Exception as exc:  # a probe error is an observation, not a crash
            self.last = f"{type(exc).__name__}: {exc}"
            self.check_give_up()
            raise _Unready(str(exc)) from exc

    def saw(self, value: T) -> T:
        self.last = self.describe(value) if self.describe is not None else value
        if self.give_up is not None and not self.ready(value):
            self.check_give_up()
        return value

    def check_give_up(self) -> None:
        """Raise the give-up exception, if any (not retried: it is not _Unready)."""
        if self.give_up is not None:
            reason = self.give_up(self.what, time.monotonic() - self.start)
            if reason is not None:
                raise reason

    def timed_out(self) -> WaitTimeout:
        return WaitTimeout(self.what, time.monotonic() - self.start, self.last)


def wait_for(
    what: str,
    probe: Callable[[], T],
    ready: Callable[[T], bool],
    timeout_s: float,
    poll_s: float = DEFAULT_POLL_S,
    describe: Callable[[T], object] | None = None,
    abort_on: tuple[type[Exception], ...] = (),
    give_up: GiveUp | None = None,
) -> T:
    """Call `probe()` until `ready(value)` holds; return that value.

    A probe that raises counts as "not yet" (the error text becomes the last
    value seen), so waiting for a server that is still starting just works.
    `give_up` is asked between polls and may end the wait early with its exception.
    """
    watch = _Watch(what, ready, timeout_s, poll_s, describe, abort_on, give_up)

    def attempt() -> T:
        with watch.probing():
            value = probe()
        return watch.saw(value)

    try:
        result: T = Retrying(**watch.policy)(attempt)
    except RetryError:
        raise watch.timed_out() from None
    return result


def wait_until(
    what: str, condition: Callable[[], object], timeout_s: float, poll_s: float = DEFAULT_POLL_S
) -> object:
    """Wait until `condition()` returns a truthy value, and return it."""
    return wait_for(what, condition, bool, timeout_s, poll_s)


async def wait_for_async(
    what: str,
    probe: Callable[[], Awaitable[T]],
    ready: Callable[[T], bool],
    timeout_s: float,
    poll_s: float = DEFAULT_POLL_S,
    describe: Callable[[T], object] | None = None,
    abort_on: tuple[type[Exception], ...] = (),
) -> T:
    """:func:`wait_for` for a coroutine probe: the loop keeps running between polls, so
    a server or stream served by the same loop goes on answering while we wait."""
    watch = _Watch(what, ready, timeout_s, poll_s, describe, abort_on)

    async def attempt() -> T:
        with watch.probing():
            value = await probe()
        return watch.saw(value)

    try:
        result: T = await AsyncRetrying(**watch.policy)(attempt)
    except RetryError:
        raise watch.timed_out() from None
    return result


async def wait_until_async(
    what: str, condition: Callable[[], object], timeout_s: float, poll_s: float = DEFAULT_POLL_S
) -> object:
    """Wait, without blocking the event loop, until the plain (non-async) `condition()`
    returns a truthy value, and return it: for files, /proc and process states."""

    async def probe() -> object:
        return condition()

    return await wait_for_async(what, probe, bool, timeout_s, poll_s)


def stays(
    what: str,
    probe: Callable[[], T],
    ok: Callable[[T], bool],
    duration_s: float,
    poll_s: float = 0.2,
) -> T:
    """Check that `ok(probe())` holds for the whole of `duration_s` (e.g. "no gRPC errors
    during 3 keepalive periods"). Raises AssertionError with the offending value."""
    end = time.monotonic() + duration_s
    start = time.monotonic()
    value = probe()
    while True:
        if not ok(value):
            raise AssertionError(
                f"{what} stopped holding after {time.monotonic() - start:.1f}s; seen: {value!r}"
            )
        if time.monotonic() >= end:
            return value
        time.sleep(min(poll_s, max(0.0, end - time.monotonic())))
        value = probe()
