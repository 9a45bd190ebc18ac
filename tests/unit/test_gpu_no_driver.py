"""No NVIDIA driver (this CI machine's real situation): the collector says unsupported, the agent goes on."""

from __future__ import annotations

import ctypes.util
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from gpuwarden.agent.registry import CollectorContext
from gpuwarden.collectors.gpu import GpuCollector, GpuSettings
from gpuwarden.health import State
from gpuwarden.paths import Paths
from tests.fixtures.nvml.support import health
from tests.golden import exposition, split

pytestmark = pytest.mark.skipif(
    ctypes.util.find_library("nvidia-ml") is not None, reason="an NVIDIA driver is installed here"
)


def test_without_a_driver_the_real_backend_reports_unsupported_and_keeps_answering(tmp_path: Path) -> None:
    ctx = CollectorContext(Paths(devfs=str(tmp_path)), logging.getLogger("test"))
    c = GpuCollector(GpuSettings(), ctx)  # the real nvidia-ml-py backend
    try:
        for _ in range(2):  # init is retried each cycle and fails the same clear way
            ms, results = split(c.collect())
            driver = health(results, "gpu.driver")
            assert driver.state is State.UNKNOWN
            assert driver.reason == "unsupported: no NVIDIA driver: libnvidia-ml.so.1 not found"
            assert "gpuwarden_gpu_nvml_up 0.0" in exposition(ms)
    finally:
        c.close()


def test_gpu_record_without_a_driver_exits_69_with_one_clear_line(tmp_path: Path) -> None:
    out = tmp_path / "rec.json"
    run = subprocess.run(
        [sys.executable, "-m", "gpuwarden", "gpu", "record", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 69
    assert run.stderr == "gpuwarden: cannot record: no NVIDIA driver: libnvidia-ml.so.1 not found\n"
    assert not out.exists()
