"""The chaos suite's short form: skipped by the default run (it breaks a private
platform for a minute or two); `.ci/run` runs it with `pytest -m chaos tests/chaos`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from harness.chaos.platform import ChaosPlatform


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "chaos" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="the chaos suite runs with: pytest -m chaos tests/chaos")
    for item in items:
        if item.get_closest_marker("chaos") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="module")
async def chaos_platform() -> AsyncIterator[ChaosPlatform]:
    """A private platform with the harness's short settings (its own embedded
    PostgreSQL: the database faults never touch a shared server)."""
    platform = await ChaosPlatform.start("short")
    try:
        yield platform
    finally:
        await platform.stop()
