"""Emitted series == catalog, and TensorRT's recorded refusals classified.

Two recordings from an H200 node (bench/tensorrt_lean_check.py, bench/results/tensorrt-lean-h200.txt)
stand in for hardware this machine lacks: `RecordedLaunchTimer` replays the kernel launch timings
KernelLatency measured there, and the JSON of TensorRT lean runtime log messages is what the real
runtime said about each bad plan.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gpuwarden.agent.registry import CollectorContext
from gpuwarden.catalog import catalog_names
from gpuwarden.collectors.engine.catalog import CATALOG
from gpuwarden.collectors.engine.collector import EngineCollector
from gpuwarden.collectors.engine.kernel_latency import LaunchSample
from gpuwarden.collectors.engine.settings import EngineSettings
from gpuwarden.collectors.engine.tensorrt_backend import classify_deserialize_failure
from gpuwarden.health import HealthResult, State
from gpuwarden.paths import Paths
from gpuwarden.worker import model
from tests.golden import split

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "engine"


class RecordedLaunchTimer:
    """A double of KernelLatency: replays one measurement recorded on an H200 node."""

    def __init__(self, path: Path) -> None:
        self.sample = LaunchSample(**json.loads(path.read_text()))
        self.closed = False

    def measure(self, samples: int) -> LaunchSample:
        return self.sample

    def close(self) -> None:
        self.closed = True


def test_a_full_probe_emits_exactly_the_catalog(tmp_path: Path) -> None:
    model.generate(str(tmp_path))
    settings = EngineSettings.model_validate(
        {
            "enabled": True,
            "backend": "onnxruntime",
            "model_dir": str(tmp_path),
            "isolate": False,
            "kernel_latency": "on",
        }
    )
    timer = RecordedLaunchTimer(FIXTURES / "h200-kernel-launch.json")
    ctx = CollectorContext(Paths(), logging.getLogger("test.engine"))
    collector = EngineCollector(settings, ctx, kernel=timer)
    metrics, health = split(collector.collect())
    emitted = {s.name for m in metrics for s in m.samples}
    assert emitted == catalog_names(CATALOG)
    (latency,) = [m for m in metrics if m.name == "gpuwarden_engine_kernel_launch_latency_seconds"]
    assert latency.samples[0].labels == {"gpu": "0", "uuid": timer.sample.uuid}
    assert latency.samples[0].value == timer.sample.gpu_seconds
    assert [h.state for h in health if isinstance(h, HealthResult)] == [State.HEALTHY]
    collector.close()
    assert timer.closed


RECORDED = json.loads((FIXTURES / "h200-tensorrt-lean-messages.json").read_text())


@pytest.mark.parametrize("case", ["random_plan", "onnx_as_plan", "empty_plan"])
def test_files_the_lean_runtime_refused_on_an_h200_as_no_plan_are_corrupt(case: str) -> None:
    failure = classify_deserialize_failure(RECORDED[case])
    assert failure.reason == "corrupt_plan"
    assert failure.detail.startswith("TensorRT cannot deserialize the plan: IRuntime::deserializeCudaEngine")


def test_a_plan_whose_platform_tag_the_lean_runtime_refused_is_incompatible() -> None:
    # The file began with TensorRT's magic tag, so the runtime read on and found another platform's tag.
    failure = classify_deserialize_failure(RECORDED["ftrt_plan"])
    assert failure.reason == "incompatible_plan" and "Platform specific tag mismatch" in failure.detail


def test_a_plan_for_another_compute_capability_is_incompatible() -> None:
    # TensorRT-RTX's refusal of its own plan on an H200 (shared reference notes, h200-baseline.md).
    message = (
        "The engine cannot run on this GPU, which has compute capability 9.0. "
        "Supported compute capabilities: 8.0 8.6 8.9 12.0 12.1 >12.0."
    )
    assert classify_deserialize_failure([message]).reason == "incompatible_plan"
