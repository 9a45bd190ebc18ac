"""The real backend: nvidia-ml-py (the `pynvml` module), kept thin.

Everything here runs on the collector's NVML thread (nvml_thread.py) except `register_xid_events` and
`wait_event`, which run on the XID event thread (events.py): NVML is thread-safe (nvml.h, "Thread
safety"), and a wait must not block the sampler.
Results are turned into plain values (dicts, lists, ints, str) so a recording equals what the collector saw.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from typing import Any

from gpuwarden.collectors.gpu.backend import (
    DRIVER_NOT_LOADED,
    GPU_IS_LOST,
    LIBRARY_NOT_FOUND,
    NOT_SUPPORTED,
    TIMEOUT,
    NvmlCallError,
    NvmlUnavailable,
    XidEvent,
    error_name,
)
from gpuwarden.collectors.gpu.queries import BY_KEY, FIELDS, FIELDS_SLOW

XID_CRITICAL_ERROR = 0x8  # nvmlEventTypeXidCriticalError
INSUFFICIENT_SIZE = 7  # NVML_ERROR_INSUFFICIENT_SIZE
NVML_LIBRARY = "libnvidia-ml.so.1"


_SCALARS = frozenset({int, float, str, bool})
# A struct's field read as ctypes stores it. nvidia-ml-py's structures override __getattribute__ (in
# Python) only to decode bytes, which `plain` does too: skipping it makes a memory answer cost a third.
_field = object.__getattribute__


def plain(value: Any) -> Any:
    """A pynvml answer (ctypes struct, array, bytes) as JSON-able Python values."""
    if value is None or type(value) in _SCALARS:  # most answers: one set lookup
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").rstrip("\x00")
    if isinstance(value, bool | int | float | str):  # subclasses
        return value
    if isinstance(value, list | tuple | ctypes.Array):
        return [plain(v) for v in value]
    fields = getattr(value, "_fields_", None)
    if fields is not None:
        return {name: plain(_field(value, name)) for name, *_ in fields}
    return str(value)


class NvmlBackend:
    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._event_set: Any = None
        self._handle_index: dict[int, int] = {}
        # Field ids a GPU refused with NOT_SUPPORTED: not asked again (each still costs time in the batch).
        self._unsupported_fields: dict[int, set[str]] = {}
        self._processes: ProcessList
        self._asks: dict[str, Callable[[int, Any], Any]] = {}

    def init(self) -> dict[str, Any]:
        try:
            # The library first: where there is no driver, pynvml (4 MB resident once imported, 17 MB
            # while compiling without a .pyc) is never loaded (bench/footprint.py). pynvml opens the same
            # name on Linux.
            ctypes.CDLL(NVML_LIBRARY)
        except OSError:
            raise NvmlUnavailable(f"no NVIDIA driver: {NVML_LIBRARY} not found") from None
        try:
            import pynvml
        except ImportError as err:  # the package is a dependency; this means a broken install
            raise NvmlUnavailable(f"nvidia-ml-py is not importable: {err}") from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as err:
            code = int(err.value)
            if code == LIBRARY_NOT_FOUND:
                raise NvmlUnavailable("no NVIDIA driver: libnvidia-ml.so.1 not found") from None
            if code == DRIVER_NOT_LOADED:
                raise NvmlUnavailable("no NVIDIA driver: the kernel module is not loaded") from None
            raise NvmlUnavailable(
                f"nvmlInit failed: NVML_ERROR_{error_name(code)}", no_driver=False
            ) from None
        self._nvml = pynvml
        self._processes = ProcessList(pynvml)
        count = pynvml.nvmlDeviceGetCount()
        self._handles = [_handle(pynvml, i) for i in range(count)]
        self._handle_index = {
            _address(h): i for i, h in enumerate(self._handles) if not isinstance(h, NvmlCallError)
        }
        return {
            "driver_version": plain(pynvml.nvmlSystemGetDriverVersion()),
            "nvml_version": plain(pynvml.nvmlSystemGetNVMLVersion()),
            "cuda_driver_version": int(pynvml.nvmlSystemGetCudaDriverVersion()),
        }

    def device_count(self) -> int:
        try:
            return int(self._nvml.nvmlDeviceGetCount())
        except self._nvml.NVMLError as err:
            raise NvmlCallError(int(err.value), "nvmlDeviceGetCount") from None

    def query(self, index: int, key: str) -> Any:
        if index >= len(self._handles):  # a GPU index past the handles opened at init: it fell off since
            raise NvmlCallError(GPU_IS_LOST, BY_KEY[key].fn)
        handle = self._handles[index]
        if isinstance(handle, NvmlCallError):  # no handle since init: every question answers its error
            raise NvmlCallError(handle.code, BY_KEY[key].fn)
        ask = self._asks.get(key) or self._ask(key)
        try:
            return ask(index, handle)
        except self._nvml.NVMLError as err:
            raise NvmlCallError(int(err.value), BY_KEY[key].fn) from None

    def _ask(self, key: str) -> Callable[[int, Any], Any]:
        """The question for `key` as one function of (index, handle), bound at its first use: a cycle asks
        ~17 per GPU, and looking up the plan and the pynvml function each time was a part of its cost."""
        q, nvml = BY_KEY[key], self._nvml
        fn, args = getattr(nvml, q.fn), q.args

        def answer(index: int, handle: Any) -> Any:
            return plain(fn(handle, *args))

        def memory(index: int, handle: Any) -> Any:
            return plain(fn(handle, version=nvml.nvmlMemory_v2))  # the v2 struct adds `reserved`

        def fields(index: int, handle: Any) -> Any:
            return self._fields(index, handle, FIELDS if key == "fields" else FIELDS_SLOW)

        def count(index: int, handle: Any) -> Any:
            return len(fn(handle, *args))  # retired pages: a count, not addresses

        def processes(index: int, handle: Any) -> Any:
            return self._processes.read(handle)

        special = {"memory": memory, "fields": fields, "fields_slow": fields, "processes": processes}
        special |= {"retired_pages_sbe": count, "retired_pages_dbe": count}
        ask = self._asks[key] = special.get(key, answer)
        return ask

    def _fields(self, index: int, handle: Any, wanted: dict[str, int]) -> dict[str, Any]:
        """One nvmlDeviceGetFieldValues call; each field answers on its own (NOT_SUPPORTED is per field)."""
        refused = self._unsupported_fields.setdefault(index, set())
        out: dict[str, Any] = {name: {"error": NOT_SUPPORTED} for name in wanted if name in refused}
        names = [name for name in wanted if name not in refused]
        if not names:
            return out
        values = self._nvml.nvmlDeviceGetFieldValues(handle, [wanted[n] for n in names])
        for name, v in zip(names, values, strict=True):
            code = _field(v, "nvmlReturn")
            if code == NOT_SUPPORTED:
                refused.add(name)
            out[name] = {"error": int(code)} if code != 0 else _field_value(v)
        return out

    def register_xid_events(self) -> list[int]:
        nvml = self._nvml
        self._event_set = nvml.nvmlEventSetCreate()
        accepted = []
        for i, handle in enumerate(self._handles):
            if isinstance(handle, NvmlCallError):
                continue
            try:
                nvml.nvmlDeviceRegisterEvents(handle, XID_CRITICAL_ERROR, self._event_set)
                accepted.append(i)
            except nvml.NVMLError as err:
                if int(err.value) != NOT_SUPPORTED:
                    raise NvmlCallError(int(err.value), "nvmlDeviceRegisterEvents") from None
        return accepted

    def wait_event(self, timeout_ms: int) -> XidEvent | None:
        nvml = self._nvml
        try:
            data = nvml.nvmlEventSetWait_v2(self._event_set, timeout_ms)
        except nvml.NVMLError as err:
            if int(err.value) == TIMEOUT:  # no event in this window
                return None
            raise NvmlCallError(int(err.value), "nvmlEventSetWait_v2") from None
        index = self._handle_index.get(_address(data.device), -1)
        return XidEvent(gpu=index, xid=int(data.eventData), source="nvml", time=time.time())

    def shutdown(self) -> None:
        if self._nvml is None:
            return
        try:
            if self._event_set is not None:
                self._nvml.nvmlEventSetFree(self._event_set)
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:
            pass
        self._nvml = None


def _handle(nvml: Any, index: int) -> Any:
    """GPU `index`'s handle, or the error that stands for it. A GPU lost before the agent started has no
    handle (nvidia-smi: "Unable to determine the device handle for GPU ...: GPU is lost"); it must become
    that GPU's health, not an init failure that hides the other GPUs and the kernel log's XIDs."""
    try:
        return nvml.nvmlDeviceGetHandleByIndex(index)
    except nvml.NVMLError as err:
        return NvmlCallError(int(err.value), "nvmlDeviceGetHandleByIndex")


def _address(handle: Any) -> int:
    return ctypes.cast(handle, ctypes.c_void_p).value or 0


def _used(value: Any) -> int | None:
    # NVML reports NVML_VALUE_NOT_AVAILABLE (all ones) when it may not see the memory (no permission).
    v = int(value) if value is not None else None
    return None if v is None or v >= 2**63 else v


# nvmlValueType_t → the member of the nvmlValue_t union that holds the value.
_VALUE_MEMBER = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}


def _field_value(v: Any) -> float | int:
    member = _VALUE_MEMBER.get(int(_field(v, "valueType")), "ullVal")
    value: float | int = _field(_field(v, "value"), member)
    return value


class ProcessList:
    """nvmlDeviceGetComputeRunningProcesses_v3 in one call, into a buffer kept between cycles.

    nvidia-ml-py's wrapper calls it twice (the count, then the list) and turns every field of every entry
    into a Python object; on a busy H200 that cost 50 us against 27 us for one call into a buffer
    (bench/gpu.py part 3). The same function, the same answer: only the sizing call is saved. A node with
    more processes than the buffer holds gets NVML's INSUFFICIENT_SIZE and the buffer grows, as the wrapper
    sizes it (count * 2 + 5). Runs on the NVML thread only, like every other query."""

    def __init__(self, nvml: Any, fn: Any = None, capacity: int = 32) -> None:
        self._nvml = nvml
        self._fn = fn  # looked up at the first read, where a driver without it answers that read's error
        self._entry = nvml.c_nvmlProcessInfo_v3_t
        self._buffer = (self._entry * capacity)()

    def read(self, handle: Any) -> list[dict[str, Any]]:
        if self._fn is None:
            self._fn = self._nvml._nvmlGetFunctionPointer("nvmlDeviceGetComputeRunningProcesses_v3")
        count = ctypes.c_uint(len(self._buffer))
        ret = self._fn(handle, ctypes.byref(count), self._buffer)
        if ret == INSUFFICIENT_SIZE:  # `count` now holds how many there are
            self._buffer = (self._entry * (count.value * 2 + 5))()
            count = ctypes.c_uint(len(self._buffer))
            ret = self._fn(handle, ctypes.byref(count), self._buffer)
        if ret != 0:
            raise self._nvml.NVMLError(ret)
        return [
            {"pid": int(_field(p, "pid")), "used_bytes": _used(_field(p, "usedGpuMemory"))}
            for p in self._buffer[: count.value]
        ]
