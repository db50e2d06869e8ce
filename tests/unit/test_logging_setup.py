"""hodei.logging_setup: what the entry points' logging keeps quiet."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from hodei.logging_setup import configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = ("grpc", "psycopg", "psycopg.pool", "asyncio", "pgserver")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def test_the_pool_says_errors_only_unless_debug(restored_logging: None, tmp_path: Path) -> None:
    # A WARNING per failed connection attempt during an outage repeats what the
    # database watch says once.
    configure_logging("INFO", file=tmp_path / "a.log")
    assert logging.getLogger("psycopg.pool").level == logging.ERROR
    assert logging.getLogger("psycopg").level == logging.WARNING
    configure_logging("DEBUG", file=tmp_path / "b.log")
    assert logging.getLogger("psycopg.pool").level == logging.WARNING
