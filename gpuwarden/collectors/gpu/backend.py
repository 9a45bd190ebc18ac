"""The interface between the GPU collector and NVML, and the errors it speaks.

Two implementations: `NvmlBackend` (the real driver, through nvidia-ml-py) and `ReplayBackend` (a
recording made on a real node, with scripted faults). The collector is given one and never knows which,
so CI runs the same code path as an H200 node. Answers are plain JSON-able values so that a recording is
exactly what the collector saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

# nvml.h return codes the collector reacts to.
NOT_SUPPORTED = 3
NO_PERMISSION = 4
DRIVER_NOT_LOADED = 9
TIMEOUT = 10
LIBRARY_NOT_FOUND = 12
GPU_IS_LOST = 15
RESET_REQUIRED = 16
ERROR_NAMES = {
    1: "UNINITIALIZED",
    2: "INVALID_ARGUMENT",
    NOT_SUPPORTED: "NOT_SUPPORTED",
    NO_PERMISSION: "NO_PERMISSION",
    6: "NOT_FOUND",
    DRIVER_NOT_LOADED: "DRIVER_NOT_LOADED",
    TIMEOUT: "TIMEOUT",
    LIBRARY_NOT_FOUND: "LIBRARY_NOT_FOUND",
    13: "FUNCTION_NOT_FOUND",
    GPU_IS_LOST: "GPU_IS_LOST",
    RESET_REQUIRED: "RESET_REQUIRED",
    17: "OPERATING_SYSTEM",
    999: "UNKNOWN",
}


class NvmlCallError(Exception):
    """One NVML call answered an error code (not a crash: NOT_SUPPORTED is routine)."""

    def __init__(self, code: int, call: str = "") -> None:
        self.code = code
        self.call = call
        super().__init__(f"{call}: NVML_ERROR_{error_name(code)}")


class NvmlUnavailable(Exception):
    """NVML cannot start. `no_driver`: there is no NVIDIA driver at all, so GPUs are unsupported here;
    otherwise the driver is there but refuses (permissions, a version mismatch): something to fix."""

    def __init__(self, reason: str, no_driver: bool = True) -> None:
        super().__init__(reason)
        self.no_driver = no_driver


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, str(code))


@dataclass(frozen=True)
class XidEvent:
    gpu: int
    xid: int
    source: str  # "nvml", "kmsg" (an Xid line) or "kmsg-text" (a bare "fallen off the bus" line)
    time: float  # Unix time the event happened (or was received, for NVML events)


class Backend(Protocol):
    def init(self) -> dict[str, Any]:
        """Start NVML once; return system facts (driver_version, nvml_version, cuda_driver_version).

        Raises NvmlUnavailable when there is no driver or library."""
        ...

    def device_count(self) -> int: ...

    def query(self, index: int, key: str) -> Any:
        """The answer to queries.BY_KEY[key] for GPU `index`; raises NvmlCallError."""
        ...

    def register_xid_events(self) -> list[int]:
        """Register for XID critical-error events on every GPU; the indexes that accepted."""
        ...

    def wait_event(self, timeout_ms: int) -> XidEvent | None:
        """Block up to `timeout_ms` for the next XID event; None on timeout."""
        ...

    def shutdown(self) -> None: ...
