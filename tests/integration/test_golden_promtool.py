"""Every golden exposition of every collector is clean under `promtool check metrics`.

The golden files are what the collectors emit for recorded inputs, so this is the metric-hygiene lint
(base units, _total only on counters, quantile only on summaries) applied to everything the agent exports.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# Inputs recorded from other servers (inference/*.prom, textfile/) are not ours to lint.
GOLDEN = sorted(
    [p for d in ("node", "network", "nvml", "zookeeper") for p in (FIXTURES / d).glob("*.prom")]
    + list((FIXTURES / "inference" / "golden").glob("*.prom"))
)

pytestmark = pytest.mark.integration


def test_there_are_golden_files_for_every_collector_family() -> None:
    assert {p.parent.name for p in GOLDEN} >= {"node", "network", "nvml", "zookeeper", "golden"}


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_exposition_passes_promtool_check_metrics(path: Path) -> None:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: `make test` installs Debian's prometheus package")
    result = subprocess.run(["promtool", "check", "metrics"], stdin=path.open("rb"), capture_output=True)
    assert (result.returncode, result.stdout + result.stderr) == (0, b"")
