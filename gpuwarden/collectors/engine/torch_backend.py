"""The torch backend: run the canary with PyTorch on the node's GPU, from a safetensors file of weights.

For inference nodes that serve with PyTorch (vLLM, SGLang, TGI) and ship no TensorRT plan: they have
torch with CUDA already. The model is the reference canary: a stack of linear layers `W1, b1 … Wn, bn`
with relu between them, stored as safetensors (docs/engine.md says why that format and not TorchScript
or a pickle). The header's metadata names the architecture, so a file for another model is refused
(`model_invalid`) instead of being run with the wrong maths.

The device is explicit: `cuda` (the default, `cuda:N` for another GPU) fails with `no_gpu` or
`module_missing` when torch cannot use CUDA, never falling back to the CPU, since a GPU canary that ran on
the CPU says nothing about the GPU. `cpu` exists for tests on machines without a GPU.
"""

from __future__ import annotations

import os
import re
from typing import Any

from gpuwarden.collectors.engine.probe import Outputs, ProbeFailure
from gpuwarden.collectors.engine.settings import TorchProbeSettings
from gpuwarden.modelfiles import Canary

ARCHITECTURE_KEY, ARCHITECTURE = "gpuwarden.architecture", "mlp-relu"
LAYER = re.compile(r"([Wb])(\d+)")


class TorchBackend:
    name = "torch"
    uses_canary = True

    def __init__(self, settings: TorchProbeSettings, model_dir: str) -> None:
        self.settings = settings
        self.path = os.path.join(model_dir, settings.model_file)
        self.files = [settings.model_file]
        self._torch: Any = None
        self._device: Any = None
        self._layers: list[tuple[Any, Any]] | None = None

    def _import(self) -> Any:
        if self._torch is None:
            try:
                import torch
            except ImportError as err:
                raise ProbeFailure("module_missing", f"torch is not installed ({err})") from None
            torch.set_num_threads(1)  # the probe must not compete with the node's real work
            # TF32 matmuls keep 10 mantissa bits: fine for serving, not for a 1e-4 golden comparison.
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            self._torch = torch
        return self._torch

    def _pick_device(self, torch: Any) -> Any:
        wanted = self.settings.device
        if wanted == "cpu":
            return torch.device("cpu")
        if torch.version.cuda is None:
            raise ProbeFailure(
                "module_missing", f"torch {torch.__version__} is a build without CUDA; the canary needs CUDA"
            )
        try:
            torch.cuda.init()  # raises with the driver's reason; is_available() only says False
        except Exception as err:
            raise ProbeFailure("no_gpu", f"torch cannot initialise CUDA: {err}") from None
        device = torch.device(wanted)
        index = 0 if device.index is None else device.index
        count = torch.cuda.device_count()
        if index >= count:
            raise ProbeFailure("no_gpu", f"{wanted} does not exist: torch sees {count} CUDA device(s)")
        return torch.device("cuda", index)

    def _load(self) -> list[tuple[Any, Any]]:
        torch = self._import()
        self._device = self._pick_device(torch)
        try:
            from safetensors import safe_open
        except ImportError as err:
            raise ProbeFailure("module_missing", f"safetensors is not installed ({err})") from None
        try:
            with safe_open(self.path, framework="pt", device=str(self._device)) as f:
                metadata = f.metadata() or {}
                tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (not a dict)
        except FileNotFoundError:
            raise ProbeFailure("model_invalid", f"{self.path} does not exist") from None
        except Exception as err:  # SafetensorError, a CUDA error while copying to the device
            raise ProbeFailure("model_invalid", f"cannot load {self.path}: {err}") from None
        return layers_of(tensors, metadata, self.path)

    def reload(self) -> None:
        self._layers = None

    def run(self, canary: Canary | None) -> Outputs:
        assert canary is not None
        if self._layers is None:
            self._layers = self._load()
        if len(canary.inputs) != 1 or len(canary.outputs) != 1:
            raise ProbeFailure("model_invalid", "the torch canary model takes one input and gives one output")
        torch, given, want = self._torch, canary.inputs[0], canary.outputs[0]
        try:
            with torch.inference_mode():
                x = torch.tensor(given.data, dtype=torch.float32).reshape(given.shape).to(self._device)
                y = forward(torch, self._layers, x)
                if y.device != self._device:
                    raise ProbeFailure("runtime_error", f"the canary ran on {y.device}, not {self._device}")
                values = y.to("cpu", torch.float64).flatten().tolist()  # waits for the GPU
        except ProbeFailure:
            raise
        except Exception as err:  # CUDA errors (OutOfMemoryError, AcceleratorError) and shape mismatches
            raise ProbeFailure("runtime_error", f"torch failed to run the canary: {err}") from None
        return {want.name: values}

    def runtime_info(self) -> tuple[str, str]:
        return "torch", "" if self._torch is None else str(self._torch.__version__)

    def close(self) -> None:
        self._layers = None


def layers_of(tensors: dict[str, Any], metadata: dict[str, str], path: str) -> list[tuple[Any, Any]]:
    """[(W1, b1), …, (Wn, bn)] after checking the names, the architecture tag and the shapes chain."""
    if metadata.get(ARCHITECTURE_KEY) != ARCHITECTURE:
        raise ProbeFailure(
            "model_invalid",
            f"{path}: metadata {ARCHITECTURE_KEY}={metadata.get(ARCHITECTURE_KEY)!r}, "
            f"the torch backend runs {ARCHITECTURE!r}",
        )
    names = {(m.group(1), int(m.group(2))) for key in tensors if (m := LAYER.fullmatch(key))}
    count = len(names) // 2
    expected = {(kind, i) for i in range(1, count + 1) for kind in "Wb"}
    if count == 0 or names != expected or len(tensors) != len(expected):
        raise ProbeFailure(
            "model_invalid", f"{path}: tensors {sorted(tensors)} are not W1, b1 … Wn, bn of an MLP"
        )
    layers = [(tensors[f"W{i}"], tensors[f"b{i}"]) for i in range(1, count + 1)]
    width = None
    for i, (w, b) in enumerate(layers, start=1):
        if w.dim() != 2 or b.dim() != 1 or b.shape[0] != w.shape[1] or width not in (None, w.shape[0]):
            shapes = f"W {list(w.shape)}, b {list(b.shape)}"
            raise ProbeFailure("model_invalid", f"{path}: layer {i} has {shapes}; shapes do not chain")
        if not (w.is_floating_point() and b.is_floating_point()):
            raise ProbeFailure("model_invalid", f"{path}: layer {i} is not floating point")
        width = w.shape[1]
    return layers


def forward(torch: Any, layers: list[tuple[Any, Any]], x: Any) -> Any:
    """relu(x·W1 + b1) … ·Wn + bn, in float32 like the golden output's tolerance assumes."""
    for i, (w, b) in enumerate(layers):
        x = torch.addmm(b.float(), x, w.float())
        if i < len(layers) - 1:
            x = torch.relu(x)
    return x
