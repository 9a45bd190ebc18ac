"""The shipped unit passes `systemd-analyze verify`, and the check really catches a broken unit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "gpuwarden.service"
pytestmark = pytest.mark.integration


def verify(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # verify checks that ExecStart's binary exists: point it at this environment's console script.
    executable = Path(sys.executable).parent / "gpuwarden"
    unit = tmp_path / "gpuwarden.service"
    unit.write_text(text.replace("/usr/local/bin/gpuwarden", str(executable)))
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)


@pytest.fixture(autouse=True)
def _needs_systemd_analyze() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: `make test` installs Debian's systemd package")


def test_the_shipped_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    result = verify(UNIT.read_text(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "gpuwarden.service" not in result.stderr, result.stderr


def test_verify_rejects_a_unit_with_a_misspelt_directive(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("Type=notify", "Typ=notify")
    result = verify(broken, tmp_path)
    assert "Unknown key 'Typ' in section [Service]" in result.stderr


def test_verify_fails_when_the_executable_does_not_exist(tmp_path: Path) -> None:
    result = verify(
        UNIT.read_text().replace("/usr/local/bin/gpuwarden agent", "/nonexistent/gw agent"), tmp_path
    )
    assert result.returncode != 0


def test_the_unit_matches_what_the_agent_implements() -> None:
    # Type=notify needs READY=1, reload is SIGHUP, and exit 78 (bad config) must not restart-loop.
    service = dict(
        line.split("=", 1)
        for line in UNIT.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert service["Type"] == "notify"
    assert service["RestartPreventExitStatus"] == "78"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
