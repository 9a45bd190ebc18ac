"""The shipped unit passes `systemd-analyze verify`, and the check really catches a broken unit."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "gpuwarden.service"
pytestmark = pytest.mark.integration


# systemd-analyze security's overall exposure (0 = locked down, 10 = unprotected) that the shipped unit must
# stay under; systemd/README.md explains each point the unit still scores and why it is needed.
EXPOSURE_MAX = 3.0


def installable(text: str, tmp_path: Path) -> Path:
    # verify checks that ExecStart's binary exists: point it at this environment's console script.
    executable = Path(sys.executable).parent / "gpuwarden"
    unit = tmp_path / "gpuwarden.service"
    unit.write_text(text.replace("/usr/bin/gpuwarden", str(executable)))
    return unit


def verify(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    unit = installable(text, tmp_path)
    return subprocess.run(
        ["systemd-analyze", "verify", "--recursive-errors=yes", str(unit)], capture_output=True, text=True
    )


def exposure(text: str, tmp_path: Path) -> float:
    unit = installable(text, tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
    )
    found = re.search(r"Overall exposure level for gpuwarden.service: ([0-9.]+)", result.stdout)
    assert found, result.stdout + result.stderr
    return float(found[1])


@pytest.fixture(autouse=True)
def _needs_systemd_analyze() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: `make test` installs Debian's systemd package")


def test_the_shipped_unit_passes_systemd_analyze_verify_without_a_warning(tmp_path: Path) -> None:
    result = verify(UNIT.read_text(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


def test_the_shipped_unit_keeps_its_exposure_score_under_the_threshold(tmp_path: Path) -> None:
    assert exposure(UNIT.read_text(), tmp_path) <= EXPOSURE_MAX


def test_the_exposure_check_fails_a_unit_stripped_of_its_hardening(tmp_path: Path) -> None:
    hardening = ("Protect", "Private", "Restrict", "SystemCall", "NoNewPrivileges", "CapabilityBoundingSet")
    stripped = "\n".join(line for line in UNIT.read_text().splitlines() if not line.startswith(hardening))
    assert exposure(stripped, tmp_path) > EXPOSURE_MAX


def test_verify_rejects_a_unit_with_a_misspelt_directive(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("Type=notify", "Typ=notify")
    result = verify(broken, tmp_path)
    assert "Unknown key 'Typ' in section [Service]" in result.stderr


def test_verify_fails_when_the_executable_does_not_exist(tmp_path: Path) -> None:
    result = verify(UNIT.read_text().replace("/usr/bin/gpuwarden agent", "/nonexistent/gw agent"), tmp_path)
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
    # The TensorRT plan cache and the state must be writable under ProtectSystem=strict.
    assert service["StateDirectory"] == service["CacheDirectory"] == "gpuwarden"
    assert service["Documentation"].startswith("file:/usr/share/doc/gpuwarden/")
