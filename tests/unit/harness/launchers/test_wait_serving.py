"""harness.launchers.base waits: a dead process ends the wait at once, a timeout
names what it waited for and quotes the log."""

from __future__ import annotations

import time

import pytest

from harness.launchers import base
from harness.launchers.base import LaunchError, wait_serving


def test_a_dead_server_ends_the_wait_at_once() -> None:
    def died() -> None:
        raise LaunchError("server exited with code 1")

    began = time.monotonic()
    with pytest.raises(LaunchError, match="exited with code 1"):
        wait_serving("127.0.0.1:1", "server", died, lambda: "", timeout_s=5.0, poll_s=0.01)
    assert time.monotonic() - began < 1.0


def test_a_timeout_quotes_the_server_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "server_health", lambda address, tls=None: "NOT_SERVING")
    with pytest.raises(LaunchError) as caught:
        wait_serving(
            "127.0.0.1:1", "server", lambda: None, lambda: "boom", timeout_s=0.1, poll_s=0.01
        )
    message = str(caught.value)
    assert "waiting for server 127.0.0.1:1 to answer SERVING" in message
    assert "'NOT_SERVING'" in message and message.endswith("; server log: boom")
