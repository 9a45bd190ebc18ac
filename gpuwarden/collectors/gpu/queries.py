"""The query plan: every NVML question the GPU collector asks, by a stable key.

The real backend turns a key into a pynvml call; the recorder stores each key's answer; the replay backend
serves the stored answer. One table keeps the three in step. Argument values are NVML's own constants
(nvml.h), spelled as numbers so the table means the same thing on a machine without pynvml.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Query:
    key: str
    fn: str  # pynvml function name
    args: tuple[int, ...] = ()
    # Slow queries run on `slow_interval`, not every cycle. On an H200 node
    # (bench/results/gpu-h200-profile-before-tiers.txt) nvmlDeviceGetPcieThroughput costs 21 ms, the
    # energy counter 3 ms, each max clock 1.6 ms and the thermal margin 0.9 ms: the driver asks the GSP
    # firmware. Values that cannot change while the driver is loaded (identity, thresholds, maxima, ECC
    # mode, power limit) are slow too: there is nothing to miss.
    slow: bool = False


# nvmlFieldValue ids (nvml.h NVML_FI_DEV_*), read in one nvmlDeviceGetFieldValues call per GPU and tier.
# Measured on an H200 node (bench/results/gpu-h200-profile-before-tiers.txt): 18 fields in one call cost
# 1.07 ms and the PCIe replay counter alone ~140 us (h200-baseline), so only the HBM temperature is read
# every cycle; the counters wait for slow_interval. ECC, remap and power fields are not asked at all: the
# direct calls give them for a few microseconds.
FIELDS: dict[str, int] = {
    "memory_temperature": 82,
}
FIELDS_SLOW: dict[str, int] = {
    "pcie_replay_counter": 94,
    "nvlink_crc_flit_errors": 38,
    "nvlink_replay_errors": 52,
    "nvlink_recovery_errors": 59,
    "clock_event_sw_power_cap_ns": 74,
    "clock_event_sync_boost_ns": 76,
    "recovery_action": 230,
    "clock_event_sw_thermal_ns": 269,
    "clock_event_hw_thermal_ns": 270,
    "clock_event_hw_power_brake_ns": 271,
}

CLOCK_GRAPHICS, CLOCK_SM, CLOCK_MEM = 0, 1, 2
NVLINK_LINKS = 18  # an H100/H200 SXM has 18 NVLink4 links; NVML answers NOT_SUPPORTED past the last

QUERIES: tuple[Query, ...] = (
    Query("name", "nvmlDeviceGetName", slow=True),
    Query("uuid", "nvmlDeviceGetUUID", slow=True),
    Query("pci", "nvmlDeviceGetPciInfo", slow=True),
    Query("memory", "nvmlDeviceGetMemoryInfo"),  # the backend asks for the v2 struct (adds `reserved`)
    Query("utilization", "nvmlDeviceGetUtilizationRates"),
    Query("temperature", "nvmlDeviceGetTemperature", (0,)),  # NVML_TEMPERATURE_GPU
    Query("temperature_shutdown", "nvmlDeviceGetTemperatureThreshold", (0,), slow=True),
    Query("temperature_slowdown", "nvmlDeviceGetTemperatureThreshold", (1,), slow=True),
    Query("temperature_memory_max", "nvmlDeviceGetTemperatureThreshold", (2,), slow=True),
    Query("temperature_gpu_max", "nvmlDeviceGetTemperatureThreshold", (3,), slow=True),
    Query("thermal_margin", "nvmlDeviceGetMarginTemperature", slow=True),
    Query("power_usage_mw", "nvmlDeviceGetPowerUsage"),
    Query("power_limit_mw", "nvmlDeviceGetEnforcedPowerLimit", slow=True),
    Query("clock_graphics_mhz", "nvmlDeviceGetClockInfo", (CLOCK_GRAPHICS,)),
    Query("clock_sm_mhz", "nvmlDeviceGetClockInfo", (CLOCK_SM,)),
    Query("clock_memory_mhz", "nvmlDeviceGetClockInfo", (CLOCK_MEM,)),
    Query("clock_max_graphics_mhz", "nvmlDeviceGetMaxClockInfo", (CLOCK_GRAPHICS,), slow=True),
    Query("clock_max_sm_mhz", "nvmlDeviceGetMaxClockInfo", (CLOCK_SM,), slow=True),
    Query("clock_max_memory_mhz", "nvmlDeviceGetMaxClockInfo", (CLOCK_MEM,), slow=True),
    Query("clock_event_reasons", "nvmlDeviceGetCurrentClocksEventReasons"),
    Query("ecc_mode", "nvmlDeviceGetEccMode", slow=True),
    # (NVML_MEMORY_ERROR_TYPE_{CORRECTED 0, UNCORRECTED 1}, NVML_{VOLATILE 0, AGGREGATE 1}_ECC)
    Query("ecc_corrected_volatile", "nvmlDeviceGetTotalEccErrors", (0, 0)),
    Query("ecc_uncorrected_volatile", "nvmlDeviceGetTotalEccErrors", (1, 0)),
    Query("ecc_corrected_aggregate", "nvmlDeviceGetTotalEccErrors", (0, 1)),
    Query("ecc_uncorrected_aggregate", "nvmlDeviceGetTotalEccErrors", (1, 1)),
    # Page retirement is the pre-Ampere mechanism; Ampere and later answer NOT_SUPPORTED and remap rows.
    Query("retired_pages_sbe", "nvmlDeviceGetRetiredPages", (0,), slow=True),
    Query("retired_pages_dbe", "nvmlDeviceGetRetiredPages", (1,), slow=True),
    Query("retired_pages_pending", "nvmlDeviceGetRetiredPagesPendingStatus", slow=True),
    Query("remapped_rows", "nvmlDeviceGetRemappedRows"),
    Query("pcie_generation", "nvmlDeviceGetCurrPcieLinkGeneration"),
    Query("pcie_generation_max", "nvmlDeviceGetMaxPcieLinkGeneration", slow=True),
    Query("pcie_width", "nvmlDeviceGetCurrPcieLinkWidth"),
    Query("pcie_width_max", "nvmlDeviceGetMaxPcieLinkWidth", slow=True),
    Query("persistence_mode", "nvmlDeviceGetPersistenceMode", slow=True),
    Query("processes", "nvmlDeviceGetComputeRunningProcesses"),
    Query("fields", "nvmlDeviceGetFieldValues"),  # the backend passes FIELDS' ids
    Query("fields_slow", "nvmlDeviceGetFieldValues", slow=True),  # and FIELDS_SLOW's
    Query("energy_mj", "nvmlDeviceGetTotalEnergyConsumption", slow=True),
    Query("pcie_tx_kbps", "nvmlDeviceGetPcieThroughput", (0,), slow=True),  # NVML_PCIE_UTIL_TX_BYTES
    Query("pcie_rx_kbps", "nvmlDeviceGetPcieThroughput", (1,), slow=True),
    *(
        Query(f"nvlink_state_{link}", "nvmlDeviceGetNvLinkState", (link,), slow=True)
        for link in range(NVLINK_LINKS)
    ),
)

BY_KEY = {q.key: q for q in QUERIES}
FAST = tuple(q.key for q in QUERIES if not q.slow)
SLOW = tuple(q.key for q in QUERIES if q.slow)
