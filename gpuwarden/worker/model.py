"""The worker's tiny model: a two-layer perceptron written with the ONNX helper API, and its golden output.

y = relu(x · W1 + b1) · W2 + b2 with x: [batch, 8], y: [batch, 4], weights drawn from a fixed seed. The
golden output of the canary input is computed with numpy in float64, independently of ONNX Runtime, so a
runtime (or a GPU) that computes wrongly is caught rather than trusted. Opset 17 / IR 8 keep the file
loadable by older ONNX Runtime and TensorRT parsers found on inference nodes.

The same weights are also written as `canary.safetensors` (what the torch backend of the engine probe
loads, docs/engine.md says why that format), with the layer stack named in its metadata.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file

from gpuwarden import modelfiles
from gpuwarden.modelfiles import Canary, Tensor

MODEL_NAME = "canary"
MODEL_FILE = "canary.onnx"
TORCH_FILE = "canary.safetensors"
# The safetensors metadata the torch backend checks: layers W1/b1 … Wn/bn, relu between them.
TORCH_METADATA = {"format": "pt", "gpuwarden.architecture": "mlp-relu"}
INPUT, OUTPUT = "input", "output"
IN_FEATURES, HIDDEN, OUT_FEATURES = 8, 16, 4
DEFAULT_SEED = 20261129
OPSET, IR_VERSION = 17, 8


def weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = {
        "W1": rng.standard_normal((IN_FEATURES, HIDDEN)) / np.sqrt(IN_FEATURES),
        "b1": rng.standard_normal(HIDDEN) * 0.1,
        "W2": rng.standard_normal((HIDDEN, OUT_FEATURES)) / np.sqrt(HIDDEN),
        "b2": rng.standard_normal(OUT_FEATURES) * 0.1,
    }
    return {name: value.astype(np.float32) for name, value in raw.items()}


def canary_input() -> np.ndarray:
    """A fixed input of 2 rows, so a batching bug (rows swapped or mixed) also shows."""
    return np.linspace(-1.0, 1.0, 2 * IN_FEATURES, dtype=np.float32).reshape(2, IN_FEATURES)


def reference_forward(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The model's maths in float64 numpy: the golden answer, computed without ONNX Runtime."""
    f = {k: v.astype(np.float64) for k, v in w.items()}
    hidden = np.maximum(x.astype(np.float64) @ f["W1"] + f["b1"], 0.0)
    return np.asarray(hidden @ f["W2"] + f["b2"])


def build_model(w: dict[str, np.ndarray]) -> onnx.ModelProto:
    nodes = [
        helper.make_node("MatMul", [INPUT, "W1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "W2"], ["h3"]),
        helper.make_node("Add", ["h3", "b2"], [OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "gpuwarden_canary",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", IN_FEATURES])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", OUT_FEATURES])],
        initializer=[numpy_helper.from_array(w[name], name) for name in ("W1", "b1", "W2", "b2")],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gpuwarden"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def canary_for(w: dict[str, np.ndarray]) -> Canary:
    x = canary_input()
    y = reference_forward(w, x)
    return Canary(
        model=MODEL_NAME,
        inputs=(Tensor(INPUT, x.shape, tuple(float(v) for v in x.ravel())),),
        outputs=(Tensor(OUTPUT, y.shape, tuple(float(v) for v in y.ravel())),),
        # float32 inference of a 16-wide layer differs from float64 by ~1e-6; 1e-4 leaves room for other
        # runtimes' summation orders (TensorRT, CUDA) yet catches any corrupted weight or activation.
        atol=1e-4,
        rtol=1e-3,
    )


def generate(directory: str, seed: int = DEFAULT_SEED) -> None:
    """Write canary.onnx, canary.safetensors, canary.json and SHA256SUMS into `directory`."""
    os.makedirs(directory, exist_ok=True)
    w = weights(seed)
    onnx.save(build_model(w), os.path.join(directory, MODEL_FILE))
    save_file(w, os.path.join(directory, TORCH_FILE), metadata=TORCH_METADATA)
    modelfiles.write_canary(os.path.join(directory, modelfiles.CANARY), canary_for(w))
    modelfiles.write_manifest(directory, [MODEL_FILE, TORCH_FILE, modelfiles.CANARY])


def ensure(directory: str) -> Canary:
    """Generate the model directory when it is missing; verify it against its manifest either way."""
    names = [MODEL_FILE, TORCH_FILE, modelfiles.CANARY, modelfiles.MANIFEST]
    if not all(os.path.exists(os.path.join(directory, n)) for n in names):
        generate(directory)
    modelfiles.verify_files(directory, [MODEL_FILE, TORCH_FILE, modelfiles.CANARY])
    return modelfiles.load_canary(os.path.join(directory, modelfiles.CANARY))
