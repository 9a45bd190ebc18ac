"""The GPU metric catalog: every series the GPU collector exports, and the NVML constants they decode.

families.py turns one GPU's NVML answers into samples of these families.
"""

from __future__ import annotations

from typing import Any

from gpuwarden.catalog import MetricSpec

G = ("gpu", "uuid")

CLOCK_EVENT_BITS = {  # nvmlClocksEventReason* (nvml.h)
    "gpu_idle": 0x1,
    "applications_clocks_setting": 0x2,
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sync_boost": 0x10,
    "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80,
}
CLOCK_EVENT_FIELDS = {
    "sw_power_cap": "clock_event_sw_power_cap_ns",
    "sync_boost": "clock_event_sync_boost_ns",
    "sw_thermal_slowdown": "clock_event_sw_thermal_ns",
    "hw_thermal_slowdown": "clock_event_hw_thermal_ns",
    "hw_power_brake_slowdown": "clock_event_hw_power_brake_ns",
}
RECOVERY_ACTIONS = {  # NVML_GPU_RECOVERY_ACTION_* (nvml.h), the driver's own verdict (also XID 154)
    0: "none",
    1: "gpu_reset",
    2: "node_reboot",
    3: "drain_p2p",
    4: "drain_and_reset",
    5: "recover_imex_domain",
    6: "bus_reset",
    7: "system_reboot",
}


def _g(name: str, help: str, labels: tuple[str, ...] = (), unit: str = "", kind: str = "gauge") -> MetricSpec:
    return MetricSpec(f"gpuwarden_gpu_{name}", kind, help, G + labels, unit)  # type: ignore[arg-type]


CATALOG = (
    MetricSpec(
        "gpuwarden_gpu_nvml_up", "gauge", "1 when NVML is initialised and answered within its deadline."
    ),
    MetricSpec("gpuwarden_gpu_devices", "gauge", "GPUs NVML sees."),
    MetricSpec(
        "gpuwarden_gpu_devices_expected",
        "gauge",
        "GPUs this node should have (collectors.gpu.expected_gpus).",
    ),
    MetricSpec(
        "gpuwarden_gpu_xid_source_up",
        "gauge",
        "1 when an XID source (nvml, kmsg) is being read.",
        ("source",),
    ),
    _g("info", "Always 1; GPU identity for joins.", ("name", "pci_bus_id", "driver_version")),
    _g("up", "1 when the GPU answered this cycle; 0 when NVML says it is lost or needs a reset."),
    _g("utilization_ratio", "Share of the last sample period a kernel ran on the GPU.", unit="ratio"),
    _g(
        "memory_utilization_ratio",
        "Share of the last sample period device memory was read or written.",
        unit="ratio",
    ),
    _g("memory_total_bytes", "Device memory installed.", unit="bytes"),
    _g("memory_used_bytes", "Device memory allocated.", unit="bytes"),
    _g("memory_free_bytes", "Device memory free.", unit="bytes"),
    _g("memory_reserved_bytes", "Device memory reserved by the driver and firmware.", unit="bytes"),
    _g("temperature_celsius", "GPU core temperature.", unit="celsius"),
    _g("memory_temperature_celsius", "HBM temperature.", unit="celsius"),
    _g("temperature_threshold_celsius", "Temperature thresholds.", ("threshold",), "celsius"),
    _g("thermal_margin_celsius", "Degrees left before the GPU slows down (T.Limit).", unit="celsius"),
    _g("power_watts", "Power draw.", unit="watts"),
    _g("power_limit_watts", "Enforced power limit.", unit="watts"),
    _g(
        "energy_joules_total",
        "Energy used since the driver loaded (polled on slow_interval).",
        unit="joules",
        kind="counter",
    ),
    _g("clock_hertz", "Current clock.", ("clock",), "hertz"),
    _g("clock_max_hertz", "Maximum clock.", ("clock",), "hertz"),
    _g("clock_event_reason", "1 when this reason holds the clocks down now (throttling).", ("reason",)),
    _g(
        "clock_event_seconds_total",
        "Time the clocks were held down for this reason.",
        ("reason",),
        "seconds",
        "counter",
    ),
    _g("ecc_enabled", "1 when ECC is enabled."),
    _g(
        "ecc_errors_total",
        "ECC errors; volatile since the driver loaded, aggregate over the GPU's life.",
        ("type", "scope"),
        kind="counter",
    ),
    _g("retired_pages", "Pages retired (GPUs before Ampere).", ("cause",)),
    _g("retired_pages_pending", "1 when a page retirement waits for a reset (GPUs before Ampere)."),
    _g("remapped_rows", "Memory rows remapped (Ampere and later).", ("cause",)),
    _g("remap_pending", "1 when a row remap waits for a GPU reset."),
    _g("remap_failed", "1 when a row remap failed: an RMA criterion."),
    _g("pcie_replays_total", "PCIe replays (link-level retransmissions).", kind="counter"),
    _g("pcie_link_generation", "Current PCIe link generation (drops at idle to save power)."),
    _g("pcie_link_generation_max", "Maximum PCIe link generation."),
    _g("pcie_link_width", "Current PCIe link width (lanes)."),
    _g("pcie_link_width_max", "Maximum PCIe link width (lanes)."),
    _g(
        "pcie_throughput_bytes_per_second",
        "PCIe throughput (polled on slow_interval).",
        ("direction",),
        "bytes",
    ),
    _g("nvlink_links", "NVLink links by state.", ("state",)),
    _g("nvlink_errors_total", "NVLink errors summed over links.", ("type",), kind="counter"),
    _g("persistence_mode", "1 when persistence mode is on."),
    _g("processes", "Compute processes on the GPU."),
    _g(
        "process_memory_used_bytes",
        "Device memory used by compute processes, by systemd unit.",
        ("unit",),
        "bytes",
    ),
    _g("recovery_action", "1 for the recovery action the driver asks for now.", ("action",)),
    # gpu_instance: the MIG GPU instance the driver attributes the XID to ("" for the whole GPU).
    _g(
        "xid_errors_total",
        "XID errors seen since the agent started.",
        ("xid", "gpu_instance"),
        kind="counter",
    ),
    _g(
        "xid_last_seen_timestamp_seconds",
        "Unix time an XID was last seen.",
        ("xid", "gpu_instance"),
        "seconds",
    ),
)


def ok(snap: dict[str, Any], key: str) -> Any:
    """The answer for `key`, or None when NVML answered an error (absent, not an error)."""
    value = snap.get(key)
    return None if isinstance(value, Exception) else value
