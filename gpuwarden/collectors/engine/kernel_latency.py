"""GPU kernel launch latency: a no-op kernel timed with CUDA events, through NVIDIA's cuda-python.

A launch that normally costs a few microseconds stretches to milliseconds when the GPU is contended,
throttled, or its driver is struggling (the first sign before XIDs appear), so it is a cheap leading
signal next to the canary. The kernel is hand-written PTX loaded with cuModuleLoadData, so the driver's
JIT compiles it and neither NVRTC nor nvcc is needed on the node. It uses the device's primary context,
the one the CUDA runtime (and so TensorRT and PyTorch) use, and makes it current in each calling thread
because the agent's runner calls collectors from worker threads.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass
from typing import Any, Protocol

from gpuwarden.collectors.engine.cuda_driver import CudaUnavailable, Driver

# PTX ISA 7.8 targets sm_80 and newer at JIT time (CUDA 11.8+ drivers); 8.0 is the fallback for drivers
# that no longer take older PTX targets.
PTX_VARIANTS = (
    (7, 8, "sm_80"),
    (8, 0, "sm_90"),
)
PTX = ".version {major}.{minor}\n.target {target}\n.address_size 64\n.visible .entry noop()\n{{\n\tret;\n}}\n"
WARMUP = 5


KernelLatencyUnavailable = CudaUnavailable


@dataclass(frozen=True)
class LaunchSample:
    device: int
    uuid: str
    gpu_seconds: float  # median event-to-event GPU time of one launch
    host_seconds: float  # median CPU time of the cuLaunchKernel call


class LaunchTimer(Protocol):
    def measure(self, samples: int) -> LaunchSample: ...

    def close(self) -> None: ...


def format_uuid(raw: bytes) -> str:
    """16 bytes → NVML's spelling, GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, so labels join with NVML's."""
    h = raw.hex()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


class KernelLatency:
    def __init__(self, device: int) -> None:
        self.device = device
        self._d: Driver | None = None
        self._state: dict[str, Any] = {}

    def _call(self, name: str, *args: Any) -> Any:
        assert self._d is not None
        return self._d(name, *args)

    def _setup(self) -> None:
        self._d = Driver()
        dev, ctx = self._d.primary_context(self.device)
        self._state = {"dev": dev, "ctx": ctx}
        self._state["uuid"] = format_uuid(bytes(self._call("cuDeviceGetUuid", dev).bytes))
        last: Exception | None = None
        for major, minor, target in PTX_VARIANTS:
            ptx = PTX.format(major=major, minor=minor, target=target).encode() + b"\0"
            try:
                self._state["module"] = self._call("cuModuleLoadData", ptx)
                break
            except KernelLatencyUnavailable as err:
                last = err
        else:
            raise KernelLatencyUnavailable(f"the driver's JIT refused the no-op kernel: {last}")
        self._state["fn"] = self._call("cuModuleGetFunction", self._state["module"], b"noop")
        self._state["stream"] = self._call("cuStreamCreate", 0)
        self._state["start"] = self._call("cuEventCreate", 0)
        self._state["end"] = self._call("cuEventCreate", 0)

    def measure(self, samples: int) -> LaunchSample:
        if "fn" not in self._state:
            self.close()
            self._setup()
        s = self._state
        self._call("cuCtxSetCurrent", s["ctx"])
        gpu, host = [], []
        for i in range(WARMUP + samples):
            self._call("cuEventRecord", s["start"], s["stream"])
            t0 = time.perf_counter()
            self._call("cuLaunchKernel", s["fn"], 1, 1, 1, 1, 1, 1, 0, s["stream"], 0, 0)
            t1 = time.perf_counter()
            self._call("cuEventRecord", s["end"], s["stream"])
            self._call("cuEventSynchronize", s["end"])
            if i >= WARMUP:
                gpu.append(self._call("cuEventElapsedTime", s["start"], s["end"]) / 1e3)
                host.append(t1 - t0)
        return LaunchSample(self.device, s["uuid"], statistics.median(gpu), statistics.median(host))

    def close(self) -> None:
        s, self._state = self._state, {}
        if self._d is None or not s:
            return
        for name, key in (
            ("cuEventDestroy", "start"),
            ("cuEventDestroy", "end"),
            ("cuStreamDestroy", "stream"),
            ("cuModuleUnload", "module"),
            ("cuDevicePrimaryCtxRelease", "dev"),
        ):
            if key in s:
                with contextlib.suppress(KernelLatencyUnavailable):  # the driver may already be gone
                    self._call(name, s[key])
