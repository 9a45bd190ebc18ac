"""The canary file (`canary.json`): a fixed request and its golden answer, in KServe v2's tensor shape."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from gpuwarden.modelfiles.manifest import ManifestError, atomic_write

CANARY = "canary.json"


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    data: tuple[float, ...]  # row-major, as KServe v2's JSON `data` field
    datatype: str = "FP32"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "datatype": self.datatype,
            "data": list(self.data),
        }


@dataclass(frozen=True)
class Canary:
    """A fixed request and its golden answer; |got - want| <= atol + rtol * |want| element-wise passes."""

    model: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    atol: float
    rtol: float

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "atol": self.atol,
            "rtol": self.rtol,
        }


def _tensor(raw: Any, where: str) -> Tensor:
    try:
        shape = tuple(int(d) for d in raw["shape"])
        data = tuple(float(v) for v in raw["data"])
        tensor = Tensor(str(raw["name"]), shape, data, str(raw.get("datatype", "FP32")))
    except (KeyError, TypeError, ValueError) as err:
        raise ManifestError(f"{CANARY}: {where} is not a tensor (name, shape, data): {err}") from None
    count = 1
    for dim in shape:
        count *= dim
    if count != len(data):
        raise ManifestError(f"{CANARY}: {where} has shape {list(shape)} but {len(data)} values")
    return tensor


def load_canary(path: str) -> Canary:
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as err:
        raise ManifestError(f"cannot read {os.path.basename(path)}: {err.strerror}") from None
    except ValueError as err:  # JSONDecodeError, or bytes that are not UTF-8
        raise ManifestError(f"{os.path.basename(path)} is not JSON: {err}") from None
    if not isinstance(raw, dict) or not raw.get("inputs") or not raw.get("outputs"):
        raise ManifestError(f"{CANARY} needs 'inputs' and 'outputs'")
    try:
        atol, rtol = float(raw.get("atol", 1e-4)), float(raw.get("rtol", 1e-3))
    except (TypeError, ValueError):
        raise ManifestError(f"{CANARY}: atol and rtol must be numbers") from None
    return Canary(
        model=str(raw.get("model", "canary")),
        inputs=tuple(_tensor(t, f"inputs[{i}]") for i, t in enumerate(raw["inputs"])),
        outputs=tuple(_tensor(t, f"outputs[{i}]") for i, t in enumerate(raw["outputs"])),
        atol=atol,
        rtol=rtol,
    )


def write_canary(path: str, canary: Canary) -> None:
    atomic_write(path, json.dumps(canary.to_json(), indent=1) + "\n")
