"""Fixtures of the harness tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def run_temp() -> Iterator[Path]:
    """A temp directory of its own for one run, with a short path: the embedded
    PostgreSQL's socket lives under it, and socket paths are limited to 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="hx-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
