"""What NVML says about the driver: its version, the CUDA version it supports and the GPU count.

Uses pynvml (nvidia-ml-py) directly and briefly: init, three queries, shutdown. The GPU collector owns the
long-lived NVML session; the doctor must also work when the agent is not running. `nvml` is injectable so
tests replay answers recorded on a real node (tests/fixtures/doctor/nvml_*.json).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class NvmlFacts:
    driver_version: str  # "580.159.04"
    cuda_driver_version: str  # "13.0": the newest CUDA runtime this driver runs
    gpu_count: int
    gpu_names: tuple[str, ...]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def cuda_version_text(encoded: int) -> str:
    """NVML encodes CUDA 12.4 as 12040 (major * 1000 + minor * 10)."""
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def read_nvml(replay: ModuleType | Any | None = None) -> NvmlFacts | str:
    """The facts, or a one-line reason why NVML could not be asked (no driver, no library, no device)."""
    nvml: Any = replay
    if nvml is None:
        try:
            import pynvml

            nvml = pynvml
        except ImportError:
            return "skipped: no NVIDIA driver (the nvidia-ml-py package is not installed)"
    try:
        nvml.nvmlInit()
    except Exception as err:  # NVMLError_LibraryNotFound / DriverNotLoaded on a host without a GPU
        return f"skipped: no NVIDIA driver (NVML unavailable: {err})"
    try:
        count = int(nvml.nvmlDeviceGetCount())
        names = tuple(_text(nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count))
        return NvmlFacts(
            driver_version=_text(nvml.nvmlSystemGetDriverVersion()),
            cuda_driver_version=cuda_version_text(int(nvml.nvmlSystemGetCudaDriverVersion_v2())),
            gpu_count=count,
            gpu_names=names,
        )
    except Exception as err:  # a driver in a bad state answers init and fails later: say so, do not crash
        return f"NVML query failed: {err}"
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
