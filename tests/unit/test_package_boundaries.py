"""The layers hold: the platform (hodei/) needs neither the e2e harness nor any test tool.

`pip install hodei` ships no pytest, pytest-bdd or testcontainers (they are the [e2e]
extra), so every platform module must import without them. These tests import the whole
package in a fresh interpreter where those imports fail, the way they fail in the runtime
image. `scripts/smoke_bare_install.sh` (run by .ci/run) proves the same with a real
install without extras.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: What the runtime install does not have.
TEST_ONLY = ("pytest", "_pytest", "pytest_bdd", "testcontainers", "harness", "features", "tests")

_BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
"""


#: The optional extras' client libraries ([docker], [kubernetes]): imported only inside
#: their provider's methods, so every module imports without them.
PROVIDER_CLIENTS = ("docker", "kubernetes")


def _run_blocked(code: str, also: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    script = _BLOCKER.format(blocked=TEST_ONLY + also) + code
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_every_platform_module_imports_without_the_harness_test_tools_or_extras() -> None:
    result = _run_blocked(
        "import pkgutil, importlib, hodei\n"
        "names = [m.name for m in pkgutil.walk_packages(hodei.__path__, 'hodei.')\n"
        "         if not m.name.endswith('__main__')]  # those run a program when imported\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names))\n",
        also=PROVIDER_CLIENTS,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.strip()) > 60  # the walk found the package, not nothing


def test_no_platform_source_names_the_harness() -> None:
    offenders = []
    for path in sorted((ROOT / "hodei").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {n}"
                for n in names
                if n.split(".")[0] in TEST_ONLY
            ]
    assert offenders == []


@pytest.mark.parametrize("argv", [["e2e"], ["e2e", "-n", "2", "--lang", "es", "-k", "x"]])
def test_hodei_e2e_without_the_extra_says_what_to_install(argv: list[str]) -> None:
    result = _run_blocked(
        f"import sys\nfrom hodei.cli.main import main\nsys.exit(main({argv!r}))\n"
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "hodei: error: 'hodei e2e' needs the e2e extra (harness is not installed): "
        "pip install 'hodei[e2e]'"
    ]


def test_runtime_dependencies_leave_the_test_tools_to_the_e2e_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(requirements: list[str]) -> set[str]:
        return {
            r.split(">")[0].split("=")[0].split("[")[0].split("<")[0].strip().lower()
            for r in requirements
        }

    runtime = names(project["dependencies"])
    assert not runtime & {"pytest", "pytest-bdd", "testcontainers"}
    assert {"pytest", "pytest-bdd", "testcontainers"} <= names(
        project["optional-dependencies"]["e2e"]
    )
    assert "hodei[e2e]" in project["optional-dependencies"]["dev"]
    assert project["entry-points"]["pytest11"] == {"hodei-e2e": "harness.plugin"}
    assert project["entry-points"]["hodei.commands"] == {"e2e": "harness.e2e:add_parser"}
    assert project["scripts"]["hodei-diagnose"] == "hodei.diagnose.cli:main"
