"""The real backend's conversions, on nvidia-ml-py's own ctypes structures (built without a driver)."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import pynvml

from gpuwarden.collectors.gpu.backend import GPU_IS_LOST, NvmlCallError
from gpuwarden.collectors.gpu.nvml_backend import (
    NvmlBackend,
    ProcessList,
    _field_value,
    _handle,
    _used,
    plain,
)
from gpuwarden.collectors.gpu.procs import UnitCache, unit_of
from gpuwarden.paths import Paths


def test_nvml_structures_become_plain_json_values() -> None:
    mem = pynvml.c_nvmlMemory_v2_t()
    mem.total, mem.reserved, mem.free, mem.used = 150754820096, 644939776, 150109880320, 0
    assert plain(mem) == {
        "version": 0,
        "total": 150754820096,
        "reserved": 644939776,
        "free": 150109880320,
        "used": 0,
    }
    assert plain(b"NVIDIA H200\x00") == "NVIDIA H200"
    assert plain([1, (2, 3)]) == [1, [2, 3]]


def test_each_field_value_type_is_read_from_its_union_member() -> None:
    values = (pynvml.c_nvmlFieldValue_t * 3)()
    values[0].valueType, values[0].value.dVal = pynvml.NVML_VALUE_TYPE_DOUBLE, 1.5
    values[1].valueType, values[1].value.ullVal = pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG, 4479646912
    values[2].valueType, values[2].value.siVal = pynvml.NVML_VALUE_TYPE_SIGNED_INT, -3
    assert [_field_value(v) for v in values] == [1.5, 4479646912, -3]


def test_a_gpu_without_a_handle_at_init_is_that_gpus_error_not_an_init_failure() -> None:
    class LostGpu:  # the two names of nvidia-ml-py that _handle uses
        NVMLError = pynvml.NVMLError

        @staticmethod
        def nvmlDeviceGetHandleByIndex(index: int) -> object:  # noqa: N802 - pynvml's name
            if index == 1:
                raise pynvml.NVMLError(GPU_IS_LOST)
            return f"handle{index}"

    assert _handle(LostGpu, 0) == "handle0"
    lost = _handle(LostGpu, 1)
    assert isinstance(lost, NvmlCallError) and lost.code == GPU_IS_LOST


def test_process_memory_nvml_cannot_see_is_absent_not_huge() -> None:
    assert _used(2**64 - 1) is None and _used(None) is None and _used(1050673152) == 1050673152


def test_process_units_come_from_cgroup_v2_and_container_ids_fold_into_their_slice() -> None:
    assert unit_of("0::/system.slice/inference-worker.service\n") == "inference-worker.service"
    assert (
        unit_of("0::/system.slice/docker-3f2c9a1b7e4d5c6a8b9c0d1e2f3a4b5c6d7e8f90.scope\n") == "system.slice"
    )
    assert (
        unit_of("12:cpu:/legacy\n") == "unknown"
        and unit_of(None) == "unknown"
        and unit_of("0::/\n") == "root"
    )


def test_the_unit_cache_reads_each_pid_once_and_forgets_pids_that_left(tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cgroup").write_text("0::/system.slice/a.service\n")
    cache = UnitCache(Paths(procfs=str(tmp_path)))
    procs = [{"pid": 7, "used_bytes": 10}, {"pid": 8, "used_bytes": None}]
    assert cache.memory_by_unit(procs) == {"a.service": 10, "unknown": 0}
    (tmp_path / "7" / "cgroup").write_text("0::/system.slice/b.service\n")
    assert cache.memory_by_unit(procs) == {"a.service": 10, "unknown": 0}  # cached while pid 7 lives
    cache.forget_except({8})
    assert cache.memory_by_unit(procs) == {"b.service": 10, "unknown": 0}  # pid 7 reused: read again


def _nvml_process_call(processes: list[tuple[int, int]] | int) -> tuple[object, list[int]]:
    """A C-callable double of nvmlDeviceGetComputeRunningProcesses_v3 (nvml.h: `infoCount` in, the count
    out; INSUFFICIENT_SIZE with the count needed when the array is too small), and the sizes it was given."""
    entry = pynvml.c_nvmlProcessInfo_v3_t
    proto = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(entry)
    )
    sizes: list[int] = []

    def call(handle: int, count: Any, infos: Any) -> int:
        sizes.append(count[0])
        if isinstance(processes, int):  # an error code
            return processes
        if count[0] < len(processes):
            count[0] = len(processes)
            return pynvml.NVML_ERROR_INSUFFICIENT_SIZE
        for i, (pid, used) in enumerate(processes):
            infos[i].pid, infos[i].usedGpuMemory = pid, used
        count[0] = len(processes)
        return pynvml.NVML_SUCCESS

    return proto(call), sizes


def test_the_process_list_is_one_call_and_grows_its_buffer_when_nvml_says_it_is_too_small() -> None:
    procs = [(473, 1050673152), (474, 2**64 - 1), (475, 0)]  # all ones: NVML may not see that memory
    fn, sizes = _nvml_process_call(procs)
    reader = ProcessList(pynvml, fn, capacity=2)
    expected = [
        {"pid": 473, "used_bytes": 1050673152},
        {"pid": 474, "used_bytes": None},
        {"pid": 475, "used_bytes": 0},
    ]
    assert reader.read(None) == expected and sizes == [2, 11]  # grown as nvidia-ml-py sizes it
    assert reader.read(None) == expected and sizes == [2, 11, 11]  # then one call per cycle
    fn, sizes = _nvml_process_call([])
    assert ProcessList(pynvml, fn).read(None) == [] and sizes == [32]


def test_a_process_list_error_is_nvmls_error_code() -> None:
    fn, _ = _nvml_process_call(GPU_IS_LOST)
    try:
        ProcessList(pynvml, fn).read(None)
    except pynvml.NVMLError as err:
        assert err.value == GPU_IS_LOST
    else:
        raise AssertionError("no error raised")


def test_structures_with_text_and_nested_values_become_plain_values() -> None:
    pci = pynvml.nvmlPciInfo_t()
    pci.busId, pci.domain, pci.device = b"00000000:00:06.0", 0, 6
    out = plain(pci)
    assert out["busId"] == "00000000:00:06.0" and out["device"] == 6 and out["domain"] == 0
    util = pynvml.c_nvmlUtilization_t()
    util.gpu, util.memory = 95, 22
    assert plain(util) == {"gpu": 95, "memory": 22}
    assert plain((0, 0, 1, 0)) == [0, 0, 1, 0] and plain(True) is True and plain(None) is None


class _Nvml:
    """A double of the few nvidia-ml-py functions the queries below use, answering with its real structures
    (values from the H200 recording), for a machine without a driver."""

    NVMLError = pynvml.NVMLError
    nvmlMemory_v2 = pynvml.nvmlMemory_v2
    c_nvmlProcessInfo_v3_t = pynvml.c_nvmlProcessInfo_v3_t

    @staticmethod
    def nvmlDeviceGetMemoryInfo(handle: object, version: int = 0) -> object:  # noqa: N802 - pynvml's name
        mem = pynvml.c_nvmlMemory_v2_t()
        mem.version, mem.total, mem.used = version, 150754820096, 1059913728
        return mem

    @staticmethod
    def nvmlDeviceGetClockInfo(handle: object, clock: int) -> int:  # noqa: N802
        return {0: 1980, 1: 1980, 2: 3201}[clock]

    @staticmethod
    def nvmlDeviceGetTemperature(handle: object, sensor: int) -> int:  # noqa: N802
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)


def test_queries_are_answered_through_the_pynvml_call_their_plan_names() -> None:
    backend = NvmlBackend()
    backend._nvml, backend._handles = _Nvml, ["handle0", NvmlCallError(GPU_IS_LOST, "x")]
    for _ in range(2):  # the second time through the bound question
        memory = backend.query(0, "memory")
        assert memory["total"] == 150754820096 and memory["version"] == pynvml.nvmlMemory_v2
        assert [backend.query(0, f"clock_{c}_mhz") for c in ("graphics", "sm", "memory")] == [
            1980,
            1980,
            3201,
        ]
        try:
            backend.query(0, "temperature")
        except NvmlCallError as err:
            assert err.code == pynvml.NVML_ERROR_NOT_SUPPORTED and err.call == "nvmlDeviceGetTemperature"
        else:
            raise AssertionError("no error raised")
        for index in (1, 2):  # no handle since init; past the handles: the GPU fell off
            try:
                backend.query(index, "memory")
            except NvmlCallError as err:
                assert err.code == GPU_IS_LOST and err.call == "nvmlDeviceGetMemoryInfo"
            else:
                raise AssertionError("no error raised")
