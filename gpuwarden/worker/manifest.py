"""The model directory's checksum manifest and canary file, shared by the worker and the engine probe.

A model directory holds the model (`canary.onnx`, or a TensorRT plan), `canary.json` (a fixed input and the
golden output with its tolerance) and `SHA256SUMS` in the format of GNU coreutils' `sha256sum` (so an
operator can run `sha256sum -c SHA256SUMS` by hand). Nothing here imports numpy or onnx: the agent reads
these files without the worker's dependencies.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from gpuwarden.readers import checksum

MANIFEST = "SHA256SUMS"
CANARY = "canary.json"


class ManifestError(Exception):
    """The manifest is missing, malformed, or a listed file does not match its checksum."""


def sha256_file(path: str) -> str:
    return checksum.file_digest(path, "sha256")


def write_manifest(directory: str, names: list[str]) -> None:
    lines = [f"{sha256_file(os.path.join(directory, name))}  {name}\n" for name in sorted(names)]
    _atomic_write(os.path.join(directory, MANIFEST), "".join(lines))


def _entries(directory: str) -> dict[str, checksum.Entry]:
    """The manifest's entries by file name, parsed by the doctor's `sha256sum -c` reader."""
    try:
        with open(os.path.join(directory, MANIFEST), encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise ManifestError(f"cannot read {MANIFEST}: {err.strerror}") from None
    try:
        return {e.path: e for e in checksum.parse_manifest(text)}
    except checksum.ManifestError as err:
        raise ManifestError(f"{MANIFEST}: {err}") from None


def read_manifest(directory: str) -> dict[str, str]:
    """{file name: hex digest}. `sha256sum` writes `HEX  NAME` (text mode) or `HEX *NAME` (binary mode)."""
    return {name: e.digest for name, e in _entries(directory).items()}


def verify(directory: str, names: list[str]) -> None:
    """Raise ManifestError unless every file in `names` is listed and matches its checksum."""
    listed = _entries(directory)
    for name in names:
        entry = listed.get(name)
        if entry is None:
            raise ManifestError(f"{name} is not listed in {MANIFEST}")
        try:
            actual = checksum.file_digest(os.path.join(directory, name), entry.algorithm)
        except OSError as err:
            raise ManifestError(f"cannot read {name}: {err.strerror}") from None
        if actual != entry.digest:
            raise ManifestError(
                f"{name} checksum mismatch: {MANIFEST} says {entry.digest[:12]}…, file is {actual[:12]}…"
            )


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
    except json.JSONDecodeError as err:
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
    _atomic_write(path, json.dumps(canary.to_json(), indent=1) + "\n")


def _atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
