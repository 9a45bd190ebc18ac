"""Project conventions that code review alone would miss (DESIGN.md, "Conventions")."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "gpuwarden"
# The roots themselves are defined here (defaults of the `paths` config section).
ROOT_OWNERS = {PACKAGE / "paths.py", PACKAGE / "config.py"}
HOST_PATH = re.compile(r"""(?<!["'])["'](/proc|/sys|/dev)(/|["'])""")


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_reads_proc_sys_or_dev_except_through_paths() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
        for path in sources()
        if path not in ROOT_OWNERS
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if HOST_PATH.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []


def test_no_shell_strings_are_ever_executed() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{n}"
        for path in sources()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(", line)
    ]
    assert offenders == []
