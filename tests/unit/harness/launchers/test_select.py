"""harness.launchers.select: one selection point, clear errors, nothing pretended."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.launchers.base import LauncherConfig, LaunchError
from harness.launchers.live import LiveLauncher
from harness.launchers.local import LocalLauncher
from harness.launchers.select import make_launcher


def test_local_is_the_default(tmp_path: Path) -> None:
    launcher = make_launcher(LauncherConfig(run_dir=tmp_path))
    try:
        assert isinstance(launcher, LocalLauncher)
    finally:
        launcher.stop()


def test_live_needs_both_endpoints() -> None:
    with pytest.raises(LaunchError, match="--database-url and --server"):
        make_launcher(LauncherConfig(name="live", server="127.0.0.1:1"))
    launcher = make_launcher(
        LauncherConfig(name="live", database_url="postgresql://x@h/db", server="127.0.0.1:1")
    )
    assert isinstance(launcher, LiveLauncher)


def test_live_refuses_faults() -> None:
    with pytest.raises(LaunchError, match="only be injected by the local launcher"):
        make_launcher(LauncherConfig(name="live", faults=frozenset({"dispatcher_off"})))


def test_unknown_fault_and_launcher() -> None:
    with pytest.raises(LaunchError, match="unknown fault"):
        make_launcher(LauncherConfig(faults=frozenset({"disk_full"})))
    with pytest.raises(LaunchError, match="unknown launcher 'k8s'"):
        make_launcher(LauncherConfig(name="k8s"))


def test_live_attach_to_nothing_fails_clearly() -> None:
    launcher = LiveLauncher("postgresql://postgres@127.0.0.1:1/nope", "127.0.0.1:1")
    with pytest.raises(LaunchError, match=r"live database .* unreachable"):
        launcher.start()


def test_no_launcher_imports_another() -> None:
    # select imports every launcher; a launcher importing another (or select) is a cycle.
    package = Path(__file__).resolve().parents[4] / "harness" / "launchers"
    launchers = {f"harness.launchers.{m}" for m in ("local", "live", "containers", "select")}
    for module in ("local", "live", "containers", "base", "docker_images"):
        tree = ast.parse((package / f"{module}.py").read_text(encoding="utf-8"))
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not imported & launchers, f"{module}.py imports {imported & launchers}"
