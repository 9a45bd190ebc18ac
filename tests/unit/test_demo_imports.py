"""The demo is product code: it runs the reference worker as a process (the agent supervises it) and
never imports `gpuwarden.worker`, nor the test harness."""

from __future__ import annotations

import ast
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "gpuwarden" / "demo"


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_demo_module_imports_the_reference_worker_or_the_tests() -> None:
    offenders = {
        f"{path.name}: {module}"
        for path in DEMO.glob("*.py")
        for module in imported_modules(path)
        if module == "gpuwarden.worker" or module.startswith(("gpuwarden.worker.", "tests"))
    }
    assert sorted(DEMO.glob("*.py")), "the demo package moved"
    assert offenders == set()
