"""What NVML says about the driver: its version, the CUDA version it supports and the GPU count.

Asks through the GPU collector's backend (`NvmlBackend` on a node, `ReplayBackend` on a recording in
tests), briefly: init, the count and names, shutdown. The GPU collector owns the long-lived NVML session;
the doctor must also work when the agent is not running.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuwarden.collectors.gpu.backend import Backend, NvmlUnavailable


@dataclass(frozen=True)
class NvmlFacts:
    driver_version: str  # "580.159.04"
    cuda_driver_version: str  # "13.0": the newest CUDA runtime this driver runs
    gpu_count: int
    gpu_names: tuple[str, ...]


def cuda_version_text(encoded: int) -> str:
    """NVML encodes CUDA 12.4 as 12040 (major * 1000 + minor * 10)."""
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def read_nvml(backend: Backend | None = None) -> NvmlFacts | str:
    """The facts, or a one-line reason why NVML could not be asked (no driver, no library, no device)."""
    if backend is None:
        from gpuwarden.collectors.gpu.nvml_backend import NvmlBackend

        backend = NvmlBackend()
    try:
        system = backend.init()
        count = backend.device_count()
        return NvmlFacts(
            driver_version=str(system["driver_version"]),
            cuda_driver_version=cuda_version_text(int(system["cuda_driver_version"])),
            gpu_count=count,
            gpu_names=tuple(str(backend.query(i, "name")) for i in range(count)),
        )
    except NvmlUnavailable as err:  # no driver or library on this host, or the driver refuses
        return f"skipped: {err}"
    except Exception as err:  # a driver in a bad state answers init and fails later: say so, do not crash
        return f"NVML query failed: {err}"
    finally:
        backend.shutdown()
