"""The torch backend of the engine probe, on the reference worker's canary.

Here (no GPU) the backend runs with `device: cpu`, which exists for these tests only: production requires
`cuda`, and the CUDA-only checks below run where torch sees a GPU (they ran on an H200, see
bench/results/engine-torch-h200.txt). `make test` installs torch's CPU-only build for this file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch extra is not installed (make test installs it)")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

from gpuwarden import modelfiles  # noqa: E402
from gpuwarden.agent.registry import CollectorContext  # noqa: E402
from gpuwarden.collectors.engine.collector import EngineCollector  # noqa: E402
from gpuwarden.collectors.engine.settings import EngineSettings  # noqa: E402
from gpuwarden.config import AgentConfig, ConfigError, from_mapping  # noqa: E402
from gpuwarden.health import Action, HealthResult, State  # noqa: E402
from gpuwarden.paths import Paths  # noqa: E402
from gpuwarden.worker import model  # noqa: E402

CUDA = torch.cuda.is_available()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    model.generate(str(tmp_path))
    return tmp_path


def collector(model_dir: Path, device: str = "cpu", **settings: Any) -> EngineCollector:
    raw = {"enabled": True, "backend": "torch", "model_dir": str(model_dir), "kernel_latency": "off"}
    s = EngineSettings.model_validate({**raw, "isolate": False, "torch": {"device": device}, **settings})
    return EngineCollector(s, CollectorContext(Paths(), logging.getLogger("test.engine"), AgentConfig()))


def probe(c: EngineCollector) -> HealthResult:
    (h,) = [i for i in c.collect() if isinstance(i, HealthResult)]
    return h


def resign(model_dir: Path) -> None:
    modelfiles.write_manifest(str(model_dir), [model.MODEL_FILE, model.TORCH_FILE, modelfiles.CANARY])


def test_the_canary_run_by_torch_matches_the_golden_output(model_dir: Path) -> None:
    c = collector(model_dir)
    h = probe(c)
    assert h.state == State.HEALTHY, h.reason
    assert "torch canary answered correctly" in h.reason
    assert c.backend.runtime_info() == ("torch", torch.__version__)


def test_the_isolated_torch_probe_gives_the_same_verdict_from_its_child_process(model_dir: Path) -> None:
    c = collector(model_dir, isolate=True)
    try:
        h = probe(c)
        assert h.state == State.HEALTHY, h.reason
        assert c.backend.pid is not None and c.backend.pid != os.getpid()  # type: ignore[attr-defined]
        assert c.backend.runtime_info() == ("torch", torch.__version__)
    finally:
        c.close()


def test_the_default_device_is_cuda_so_a_cpu_probe_must_be_asked_for() -> None:
    assert EngineSettings().torch.device == "cuda"


@pytest.mark.skipif(torch.version.cuda is not None, reason="this torch is a CUDA build")
def test_cuda_on_a_torch_without_cuda_fails_instead_of_falling_back_to_the_cpu(model_dir: Path) -> None:
    h = probe(collector(model_dir, device="cuda"))
    assert h.state == State.UNHEALTHY and h.suggested_action == Action.FIX_CONFIG
    assert "module_missing" in h.reason and "without CUDA" in h.reason


@pytest.mark.skipif(not CUDA, reason="needs a GPU that torch can use")
def test_on_a_gpu_the_canary_runs_on_the_gpu_and_matches(model_dir: Path) -> None:
    c = collector(model_dir, device="cuda")
    h = probe(c)
    assert h.state == State.HEALTHY, h.reason
    backend: Any = c.backend
    assert backend._device.type == "cuda" and backend._layers[0][0].device.type == "cuda"


@pytest.mark.skipif(not CUDA, reason="needs a GPU that torch can use")
def test_a_gpu_index_past_the_last_device_is_no_gpu(model_dir: Path) -> None:
    h = probe(collector(model_dir, device=f"cuda:{torch.cuda.device_count()}"))
    assert h.state == State.UNHEALTHY and "no_gpu" in h.reason and "does not exist" in h.reason


def test_weights_changed_after_their_checksum_are_never_loaded(model_dir: Path) -> None:
    path = model_dir / model.TORCH_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40
    path.write_bytes(bytes(data))
    h = probe(collector(model_dir))
    assert h.state == State.UNHEALTHY and h.suggested_action == Action.REDEPLOY_MODEL
    assert "checksum_mismatch" in h.reason and model.TORCH_FILE in h.reason


def test_other_weights_with_valid_checksums_are_a_wrong_answer(model_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    model.generate(str(other), seed=model.DEFAULT_SEED + 1)
    os.replace(other / model.TORCH_FILE, model_dir / model.TORCH_FILE)
    resign(model_dir)
    h = probe(collector(model_dir))
    assert h.state == State.DEGRADED and "wrong_answer" in h.reason
    assert h.suggested_action == Action.INSPECT_HARDWARE


def write_weights(model_dir: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None) -> None:
    safetensors_numpy.save_file(tensors, str(model_dir / model.TORCH_FILE), metadata=metadata)
    resign(model_dir)


def test_a_safetensors_file_without_the_architecture_tag_is_refused(model_dir: Path) -> None:
    write_weights(model_dir, model.weights(model.DEFAULT_SEED), None)
    h = probe(collector(model_dir))
    assert h.state == State.UNHEALTHY and "model_invalid" in h.reason and "mlp-relu" in h.reason


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"W2": np.zeros((17, 4), np.float32)}, "shapes do not chain"),
        ({"b3": np.zeros(4, np.float32)}, "are not W1, b1"),
        ({"W1": np.zeros(8, np.float32)}, "shapes do not chain"),
        ({"b2": np.zeros(4, np.int32)}, "not floating point"),
    ],
)
def test_weights_that_are_not_a_chain_of_layers_are_refused(
    model_dir: Path, change: dict[str, np.ndarray], message: str
) -> None:
    write_weights(model_dir, {**model.weights(model.DEFAULT_SEED), **change}, model.TORCH_METADATA)
    h = probe(collector(model_dir))
    assert h.state == State.UNHEALTHY and "model_invalid" in h.reason and message in h.reason


def test_a_truncated_safetensors_file_is_refused_with_the_libraries_reason(model_dir: Path) -> None:
    path = model_dir / model.TORCH_FILE
    path.write_bytes(path.read_bytes()[:100])
    resign(model_dir)
    h = probe(collector(model_dir))
    assert h.state == State.UNHEALTHY and "model_invalid" in h.reason and "cannot load" in h.reason


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CUDA", "cuda:"])
def test_a_device_that_is_neither_cuda_nor_cpu_is_a_config_error_naming_the_key(device: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"collectors": {"engine": {"backend": "torch", "torch": {"device": device}}}})
    (problem,) = err.value.problems
    assert problem.startswith("collectors.engine.torch.device")
