"""Engine probe units: golden comparison, manifests, model files, settings, module and plan failures."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import socket
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuwarden import modelfiles
from gpuwarden.agent.registry import CollectorContext
from gpuwarden.collectors.engine.collector import EngineCollector
from gpuwarden.collectors.engine.files import ModelFiles
from gpuwarden.collectors.engine.probe import REASONS, ProbeFailure, compare
from gpuwarden.collectors.engine.settings import EngineSettings
from gpuwarden.collectors.engine.tensorrt_backend import load_module
from gpuwarden.config import ConfigError, from_mapping
from gpuwarden.health import Action, HealthResult, State
from gpuwarden.modelfiles import Canary, ManifestError, Tensor
from gpuwarden.paths import Paths
from gpuwarden.worker import model

CANARY = Canary(
    model="m",
    inputs=(Tensor("x", (1, 2), (0.0, 1.0)),),
    outputs=(Tensor("y", (1, 3), (1.0, -2.0, 100.0)),),
    atol=1e-3,
    rtol=1e-2,
)


def test_answer_within_absolute_plus_relative_tolerance_matches() -> None:
    # 100 * rtol + atol = 1.001 of room on the last element, 0.00102 on the first.
    result = compare(CANARY, {"y": [1.001, -2.0, 100.9]})
    assert result.worst == "" and result.max_abs_error == pytest.approx(0.9)


def test_answer_outside_tolerance_names_the_worst_element() -> None:
    result = compare(CANARY, {"y": [1.5, -2.0, 101.5]})
    assert result.worst == "y[2]: got 101.5, want 100"  # 1.5 - 1.001 beats 0.5 - 0.011
    assert result.max_abs_error == pytest.approx(1.5)


def test_nan_never_matches_the_golden_output() -> None:
    result = compare(CANARY, {"y": [1.0, math.nan, 100.0]})
    assert result.worst.startswith("y[1]: got nan") and math.isinf(result.max_abs_error)


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({"z": [1.0, 2.0, 3.0]}, "no output named 'y'"),
        ({"y": [1.0, 2.0]}, "has 2 values, the canary expects 3"),
    ],
)
def test_missing_or_misshapen_output_is_a_bad_response(outputs: dict[str, list[float]], message: str) -> None:
    with pytest.raises(ProbeFailure) as err:
        compare(CANARY, outputs)
    assert err.value.reason == "bad_response" and message in err.value.detail


def test_probe_failure_reasons_are_a_closed_set() -> None:
    with pytest.raises(ValueError):
        ProbeFailure("flaky", "not a reason")
    assert all(isinstance(action, Action) for _, action in REASONS.values())


def test_manifest_reads_sha256sum_text_and_binary_mode_lines(tmp_path: Path) -> None:
    digest = "a" * 64
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  model.onnx\n{digest.upper()} *model.plan\n\n")
    entries = modelfiles.read_manifest(str(tmp_path / "SHA256SUMS"))
    assert {e.path: e.digest for e in entries} == {"model.onnx": digest, "model.plan": digest}


@pytest.mark.parametrize("text", ["abc  model.onnx\n", f"{'a' * 64}  ../etc/passwd\n", "\n"])
def test_malformed_manifest_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "SHA256SUMS").write_text(text)
    with pytest.raises(ManifestError):
        modelfiles.read_manifest(str(tmp_path / "SHA256SUMS"))


def test_canary_whose_data_does_not_fill_its_shape_is_refused(tmp_path: Path) -> None:
    bad = {
        "inputs": [{"name": "x", "shape": [2, 2], "data": [1, 2, 3]}],
        "outputs": [{"name": "y", "shape": [1], "data": [1]}],
    }
    (tmp_path / "canary.json").write_text(json.dumps(bad))
    with pytest.raises(ManifestError, match=r"has shape \[2, 2\] but 3 values"):
        modelfiles.load_canary(str(tmp_path / "canary.json"))


def test_generated_golden_output_is_the_numpy_forward_pass_of_the_weights(tmp_path: Path) -> None:
    import numpy as np

    model.generate(str(tmp_path))
    canary = modelfiles.load_canary(str(tmp_path / "canary.json"))
    w = model.weights(model.DEFAULT_SEED)
    x = np.array(canary.inputs[0].data).reshape(canary.inputs[0].shape)
    hidden = np.maximum(x @ w["W1"].astype(float) + w["b1"], 0)
    np.testing.assert_allclose(
        np.array(canary.outputs[0].data), (hidden @ w["W2"] + w["b2"]).ravel(), rtol=1e-6
    )


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    model.generate(str(tmp_path))
    return tmp_path


def test_model_files_are_hashed_again_only_when_they_change(model_dir: Path) -> None:
    files = ModelFiles(str(model_dir), ["canary.onnx", "canary.json"], verify=True)
    assert files.refresh() is True
    assert files.refresh() is False
    onnx_file = model_dir / "canary.onnx"
    later = time.time_ns() + 5_000_000_000
    os.utime(onnx_file, ns=(later, later))  # same bytes, new mtime: hashed again, still good
    assert files.refresh() is True


def test_a_missing_plan_and_a_missing_canary_get_their_own_reasons(model_dir: Path) -> None:
    with pytest.raises(ProbeFailure) as plan:
        ModelFiles(str(model_dir), ["canary.plan"], verify=True).refresh()
    assert plan.value.reason == "missing_plan"
    (model_dir / "canary.json").unlink()
    with pytest.raises(ProbeFailure) as canary:
        ModelFiles(str(model_dir), ["canary.json"], verify=True).refresh()
    assert canary.value.reason == "model_invalid"


def test_a_file_not_listed_in_the_manifest_fails_verification(model_dir: Path) -> None:
    (model_dir / "canary.plan").write_bytes(b"plan")
    with pytest.raises(ProbeFailure) as err:
        ModelFiles(str(model_dir), ["canary.plan"], verify=True).refresh()
    assert err.value.reason == "checksum_mismatch" and "not listed" in err.value.detail


def test_probe_timeout_of_half_the_collector_timeout_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"collectors": {"engine": {"timeout": 10, "probe_timeout": 5}}})
    (problem,) = err.value.problems
    assert problem.startswith("collectors.engine: probe_timeout must be less than half of timeout")


def test_unknown_keys_in_a_backend_section_name_their_path() -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"collectors": {"engine": {"http": {"uri": "http://x"}}}})
    assert err.value.problems == ["collectors.engine.http.uri: unknown key"]


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) for m in ("tensorrt", "tensorrt_lean_bindings", "tensorrt_lean")),
    reason="a TensorRT module is installed here",
)
def test_without_any_tensorrt_module_the_reason_lists_what_was_tried() -> None:
    with pytest.raises(ProbeFailure) as err:
        load_module("auto")
    assert err.value.reason == "module_missing"
    for name in ("tensorrt ", "tensorrt_lean_bindings", "tensorrt_lean "):
        assert name in err.value.detail + " "


def collector(settings: dict[str, object]) -> EngineCollector:
    ctx = CollectorContext(Paths(), logging.getLogger("test.engine"))
    return EngineCollector(EngineSettings.model_validate({"enabled": True, **settings}), ctx)


def health_of(c: EngineCollector) -> list[HealthResult]:
    return [item for item in c.collect() if isinstance(item, HealthResult)]


def test_tensorrt_probe_without_its_plan_is_unhealthy_at_once(model_dir: Path) -> None:
    c = collector({"backend": "tensorrt", "model_dir": str(model_dir), "kernel_latency": "off"})
    (h,) = health_of(c)
    assert h.state == State.UNHEALTHY and h.suggested_action == Action.REDEPLOY_MODEL
    assert "missing_plan" in h.reason and "canary.plan does not exist" in h.reason


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kernel_latency_auto_is_silent_where_the_driver_is_unusable(model_dir: Path) -> None:
    c = collector({"model_dir": str(model_dir), "http": {"url": f"http://127.0.0.1:{closed_port()}"}})
    assert [h.component for h in health_of(c)] == ["engine.probe"]


def test_kernel_latency_on_reports_unknown_with_the_drivers_reason(model_dir: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    c = collector({"model_dir": str(model_dir), "kernel_latency": "on", "http": {"url": url}})
    probe, kernel = health_of(c)
    assert probe.state == State.DEGRADED and "unreachable" in probe.reason
    assert kernel.component == "engine.kernel_launch" and kernel.state == State.UNKNOWN
    assert kernel.reason.startswith("not measured: ")


@given(
    want=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=8),
    share=st.floats(0, 0.99),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_any_answer_inside_the_tolerance_band_passes(want: list[float], share: float, sign: float) -> None:
    canary = Canary("m", (), (Tensor("y", (len(want),), tuple(want)),), atol=1e-4, rtol=1e-3)
    got = [w + sign * share * (1e-4 + 1e-3 * abs(w)) for w in want]
    assert compare(canary, {"y": got}).worst == ""


@given(want=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=8), index=st.integers(0, 7))
def test_one_element_just_outside_the_band_fails(want: list[float], index: int) -> None:
    canary = Canary("m", (), (Tensor("y", (len(want),), tuple(want)),), atol=1e-4, rtol=1e-3)
    got = list(want)
    i = index % len(want)
    got[i] = want[i] + 1.01 * (1e-4 + 1e-3 * abs(want[i]))
    assert compare(canary, {"y": got}).worst.startswith(f"y[{i}]:")
