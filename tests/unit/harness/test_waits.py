"""harness.waits: every give-up says what, how long, and the last value seen."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from harness.waits import (
    WaitTimeout,
    stays,
    wait_for,
    wait_for_async,
    wait_until,
    wait_until_async,
)


def test_wait_returns_the_first_ready_value() -> None:
    counter = itertools.count()
    assert (
        wait_for(
            "the counter to reach 3",
            lambda: next(counter),
            lambda v: v >= 3,
            timeout_s=2.0,
            poll_s=0.001,
        )
        == 3
    )


def test_timeout_names_what_how_long_and_the_last_value() -> None:
    start = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        wait_for(
            "job 42 to reach SUCCEEDED",
            lambda: "PENDING",
            lambda v: v == "SUCCEEDED",
            timeout_s=0.3,
            poll_s=0.05,
        )
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert "waiting for job 42 to reach SUCCEEDED" in message
    assert "last seen: 'PENDING'" in message
    assert message.startswith("timed out after 0.")
    assert 0.3 <= elapsed < 1.5
    assert info.value.last == "PENDING"


def test_a_probe_that_raises_is_retried_and_its_error_reported() -> None:
    def probe() -> int:
        raise ConnectionError("connection refused")

    with pytest.raises(WaitTimeout, match="last seen: 'ConnectionError: connection refused'"):
        wait_for("the server", probe, bool, timeout_s=0.2, poll_s=0.05)


def test_abort_on_ends_the_wait_at_once() -> None:
    class Exited(Exception):
        pass

    def probe() -> int:
        raise Exited("server exited with code 2")

    start = time.monotonic()
    with pytest.raises(Exited):
        wait_for("the server", probe, bool, timeout_s=5.0, abort_on=(Exited,))
    assert time.monotonic() - start < 1.0


def test_describe_controls_the_last_value_text() -> None:
    with pytest.raises(WaitTimeout, match="last seen: '0/4 published'"):
        wait_for(
            "outbox rows",
            lambda: [False] * 4,
            lambda rows: all(rows),
            timeout_s=0.1,
            describe=lambda rows: f"{sum(rows)}/{len(rows)} published",
        )


def test_wait_until_truthy() -> None:
    assert wait_until("a truthy value", lambda: "yes", timeout_s=0.5) == "yes"


def test_stays_fails_with_the_offending_value() -> None:
    values = iter([0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    with pytest.raises(AssertionError, match=r"no errors stopped holding .* seen: 1"):
        stays("no errors", lambda: next(values), lambda v: v == 0, duration_s=1.0, poll_s=0.01)
    assert stays("no errors", lambda: 0, lambda v: v == 0, duration_s=0.05, poll_s=0.01) == 0


async def test_async_wait_returns_the_first_ready_value_and_lets_the_loop_run() -> None:
    counter = itertools.count()
    ticks: list[int] = []

    async def ticker() -> None:
        while True:
            ticks.append(1)
            await asyncio.sleep(0.001)

    async def probe() -> int:
        return next(counter)

    task = asyncio.ensure_future(ticker())
    try:
        value = await wait_for_async("the counter to reach 3", probe, lambda v: v >= 3, 2.0, 0.01)
    finally:
        task.cancel()
    assert value == 3
    assert ticks, "the event loop was blocked while waiting"


async def test_async_timeout_names_what_how_long_and_the_last_value() -> None:
    async def probe() -> str:
        return "PENDING"

    with pytest.raises(WaitTimeout) as info:
        await wait_for_async("job j1 to be RUNNING", probe, lambda v: v == "RUNNING", 0.2, 0.02)
    assert "job j1 to be RUNNING" in str(info.value) and "'PENDING'" in str(info.value)


async def test_async_probe_errors_are_observations_unless_they_abort() -> None:
    async def failing() -> int:
        raise ConnectionError("refused")

    with pytest.raises(WaitTimeout) as info:
        await wait_for_async("the server", failing, bool, 0.1, 0.02)
    assert "ConnectionError: refused" in str(info.value)

    class Gone(Exception):
        pass

    async def gone() -> int:
        raise Gone("the process exited")

    with pytest.raises(Gone):
        await wait_for_async("the process", gone, bool, 5.0, 0.02, abort_on=(Gone,))


async def test_async_wait_until_returns_the_truthy_value() -> None:
    values = iter([0, "", "done"])
    assert await wait_until_async("a value", lambda: next(values), 1.0, 0.001) == "done"
