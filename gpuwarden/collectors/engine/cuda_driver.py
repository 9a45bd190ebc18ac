"""A thin wrapper over cuda-python's driver API: import it once, turn CUresult codes into exceptions.

cuda-python returns `(CUresult, value...)` tuples instead of raising; every caller here wants "the value
or an error naming the call", so that is all this does.
"""

from __future__ import annotations

from typing import Any


class CudaUnavailable(Exception):
    """cuda-python is missing, libcuda cannot be loaded, or a driver call failed."""


def load() -> Any:
    try:
        from cuda.bindings import driver
    except ImportError:
        try:
            from cuda import cuda as driver  # cuda-python before 12.6 named the module this way
        except ImportError:
            raise CudaUnavailable("cuda-python (cuda-bindings) is not installed") from None
    return driver


class Driver:
    def __init__(self) -> None:
        self.d = load()

    def __call__(self, name: str, *args: Any) -> Any:
        d = self.d
        try:
            result = getattr(d, name)(*args)
        except Exception as err:  # cuda-bindings raises when libcuda.so cannot be loaded at all
            raise CudaUnavailable(f"{name}: {err}") from None
        code, rest = result[0], result[1:]
        if code != d.CUresult.CUDA_SUCCESS:
            err_name = d.cuGetErrorName(code)[1]
            shown = err_name.decode() if isinstance(err_name, bytes) else str(code)
            raise CudaUnavailable(f"{name} failed: {shown}")
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else rest

    def primary_context(self, device: int) -> tuple[Any, Any]:
        """(device, context): the CUDA runtime's primary context, current in the calling thread."""
        self("cuInit", 0)
        dev = self("cuDeviceGet", device)
        ctx = self("cuDevicePrimaryCtxRetain", dev)
        self("cuCtxSetCurrent", ctx)
        return dev, ctx

    def compute_capability(self, dev: Any) -> str:
        attr = self.d.CUdevice_attribute
        major = self("cuDeviceGetAttribute", attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)
        minor = self("cuDeviceGetAttribute", attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)
        return f"{major}.{minor}"
