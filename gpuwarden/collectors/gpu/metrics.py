"""The GPU metric catalog and the function that turns one GPU's NVML answers into samples.

Units are Prometheus base units: NVML's milliwatts, millijoules, MHz, KB/s and nanoseconds are converted
here. A signal NVML answers NOT_SUPPORTED for is simply absent (h200-baseline: NVLink fields on an H200).
"""

from __future__ import annotations

from typing import Any

from gpuwarden.catalog import Families, MetricSpec, checked_labels

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


class Labels:
    """One GPU's label dicts, one per series, built and checked against the catalog once per GPU (and UUID),
    then shared by every cycle's samples (nothing mutates a sample's labels). A cycle then only pairs
    values with them (`add_fast`): checking and building labels per sample was most of what a cycle's
    Python cost (bench/gpu.py part 3)."""

    def __init__(self, gpu: str, uuid: str) -> None:
        self.gpu, self.uuid = gpu, uuid
        self.base = _checked("utilization_ratio", {"gpu": gpu, "uuid": uuid})
        self.clock = [(f"clock_{c}_mhz", _checked("clock_hertz", {**self.base, "clock": c})) for c in CLOCKS]
        self.reason = [
            (bit, _checked("clock_event_reason", {**self.base, "reason": r}))
            for r, bit in CLOCK_EVENT_BITS.items()
        ]
        self.ecc = [
            (f"ecc_{kind}_{scope}", _checked("ecc_errors_total", {**self.base, "type": kind, "scope": scope}))
            for kind in ("corrected", "uncorrected")
            for scope in ("volatile", "aggregate")
        ]
        self.remap = {
            cause: _checked("remapped_rows", {**self.base, "cause": cause})
            for cause in ("correctable", "uncorrectable")
        }
        self._units: dict[str, dict[str, str]] = {}
        self._dicts: dict[tuple[str, ...], dict[str, str]] = {}

    def unit(self, unit: str) -> dict[str, str]:
        labels = self._units.get(unit)
        if labels is None:
            labels = self._units[unit] = _checked("process_memory_used_bytes", {**self.base, "unit": unit})
        return labels

    def putter(self, fams: Families) -> Any:
        """A sample adder by short name and extra labels, for the slow tier (built once per slow read)."""
        dicts, base = self._dicts, {"gpu": self.gpu, "uuid": self.uuid}

        def put(name: str, value: Any, scale: float = 1.0, per: float = 1.0, **extra: str) -> None:
            # Dividing by `per` (100, 1000, 1e9) keeps 95% exactly 0.95; multiplying by 0.01 would not.
            if value is None:
                return
            full = _NAMES[name]
            key = (full, *extra.values())
            labels = dicts.get(key)
            if labels is None:
                labels = dicts[key] = fams.check_labels(full, {**base, **extra})
            fams.append(full, labels, float(value) * scale / per)

        return put


_NAMES = {spec.name.removeprefix("gpuwarden_gpu_"): spec.name for spec in CATALOG}
_SPECS = {spec.name: spec for spec in CATALOG}
CLOCKS = ("graphics", "sm", "memory")


def _checked(name: str, labels: dict[str, str]) -> dict[str, str]:
    return checked_labels(_SPECS[_NAMES[name]], labels)


def _times(value: Any, scale: float) -> float | None:
    return None if value is None else float(value) * scale


def _per(value: Any, per: float) -> float | None:
    # Dividing by `per` (100, 1000) keeps 95% exactly 0.95; multiplying by 0.01 would not.
    return None if value is None else float(value) / per


# Full names of the every-cycle families (a KeyError at import if one left the catalog).
UTILIZATION, MEMORY_UTILIZATION = _NAMES["utilization_ratio"], _NAMES["memory_utilization_ratio"]
MEMORY = tuple((part, _NAMES[f"memory_{part}_bytes"]) for part in ("total", "used", "free", "reserved"))
TEMPERATURE, HBM_TEMPERATURE = _NAMES["temperature_celsius"], _NAMES["memory_temperature_celsius"]
POWER, CLOCK, REASON = _NAMES["power_watts"], _NAMES["clock_hertz"], _NAMES["clock_event_reason"]
ECC, REMAPPED = _NAMES["ecc_errors_total"], _NAMES["remapped_rows"]
REMAP_PENDING, REMAP_FAILED = _NAMES["remap_pending"], _NAMES["remap_failed"]
PCIE_GEN, PCIE_WIDTH = _NAMES["pcie_link_generation"], _NAMES["pcie_link_width"]
PROCESSES, PROCESS_MEMORY = _NAMES["processes"], _NAMES["process_memory_used_bytes"]


def add_fast(fams: Families, labels: Labels, snap: dict[str, Any], units: dict[str, int]) -> None:
    """Every-cycle samples for one GPU that answered; `units` is process memory by systemd unit.

    One list of (family, labels, value) rows in exposition order, a None value where NVML gave no answer,
    handed to the builder at once."""
    base = labels.base
    util = ok(snap, "utilization") or {}
    mem = ok(snap, "memory") or {}
    hbm = (ok(snap, "fields") or {}).get("memory_temperature")
    rows: list[tuple[str, dict[str, str], Any]] = [
        (UTILIZATION, base, _per(util.get("gpu"), 100)),
        (MEMORY_UTILIZATION, base, _per(util.get("memory"), 100)),
        *[(name, base, mem.get(part)) for part, name in MEMORY],
        (TEMPERATURE, base, ok(snap, "temperature")),
        (HBM_TEMPERATURE, base, hbm if isinstance(hbm, int | float) and hbm else None),  # 0: no sensor
        (POWER, base, _per(ok(snap, "power_usage_mw"), 1000)),
        *[(CLOCK, lab, _times(ok(snap, key), 1e6)) for key, lab in labels.clock],
    ]
    reasons = ok(snap, "clock_event_reasons")
    if reasons is not None:
        rows += [(REASON, lab, bool(reasons & bit)) for bit, lab in labels.reason]
    rows += [(ECC, lab, ok(snap, key)) for key, lab in labels.ecc]
    remap = ok(snap, "remapped_rows")
    if remap is not None:
        corr, unc, pending, failure = remap
        rows += [
            (REMAPPED, labels.remap["correctable"], corr),
            (REMAPPED, labels.remap["uncorrectable"], unc),
            (REMAP_PENDING, base, bool(pending)),
            (REMAP_FAILED, base, bool(failure)),
        ]
    rows += [(PCIE_GEN, base, ok(snap, "pcie_generation")), (PCIE_WIDTH, base, ok(snap, "pcie_width"))]
    procs = ok(snap, "processes")
    if procs is not None:
        rows.append((PROCESSES, base, len(procs)))
        rows += [(PROCESS_MEMORY, labels.unit(unit), used) for unit, used in sorted(units.items())]
    fams.extend(rows)


def add_slow(fams: Families, labels: Labels, snap: dict[str, Any], driver: str) -> None:
    """Samples read on slow_interval (identity, limits, expensive counters); built once per read."""
    put = labels.putter(fams)
    gpu, uuid = labels.gpu, labels.uuid
    fields = {k: v for k, v in (ok(snap, "fields_slow") or {}).items() if not isinstance(v, dict)}
    pci = (ok(snap, "pci") or {}).get("busId", "")
    fams.add(
        "gpuwarden_gpu_info",
        1,
        gpu=gpu,
        uuid=uuid,
        name=str(ok(snap, "name") or ""),
        pci_bus_id=pci,
        driver_version=driver,
    )
    for threshold in ("shutdown", "slowdown", "gpu_max", "memory_max"):
        put("temperature_threshold_celsius", ok(snap, f"temperature_{threshold}"), threshold=threshold)
    put("thermal_margin_celsius", ok(snap, "thermal_margin"))
    put("power_limit_watts", ok(snap, "power_limit_mw"), per=1000)
    put("energy_joules_total", ok(snap, "energy_mj"), per=1000)
    for clock in CLOCKS:
        put("clock_max_hertz", ok(snap, f"clock_max_{clock}_mhz"), 1e6, clock=clock)
    for reason, key in CLOCK_EVENT_FIELDS.items():
        put("clock_event_seconds_total", fields.get(key), per=1e9, reason=reason)
    ecc_mode = ok(snap, "ecc_mode")
    if ecc_mode is not None:
        put("ecc_enabled", bool(ecc_mode[0]))
    put("retired_pages", ok(snap, "retired_pages_sbe"), cause="single_bit_ecc")
    put("retired_pages", ok(snap, "retired_pages_dbe"), cause="double_bit_ecc")
    put("retired_pages_pending", ok(snap, "retired_pages_pending"))
    put("pcie_replays_total", fields.get("pcie_replay_counter"))
    put("pcie_link_generation_max", ok(snap, "pcie_generation_max"))
    put("pcie_link_width_max", ok(snap, "pcie_width_max"))
    put("pcie_throughput_bytes_per_second", ok(snap, "pcie_tx_kbps"), 1024, direction="tx")
    put("pcie_throughput_bytes_per_second", ok(snap, "pcie_rx_kbps"), 1024, direction="rx")
    links = [ok(snap, key) for key in snap if key.startswith("nvlink_state_")]
    if any(state is not None for state in links):
        put("nvlink_links", sum(1 for s in links if s == 1), state="active")
        put("nvlink_links", sum(1 for s in links if s == 0), state="inactive")
    for kind, key in (
        ("crc_flit", "nvlink_crc_flit_errors"),
        ("replay", "nvlink_replay_errors"),
        ("recovery", "nvlink_recovery_errors"),
    ):
        put("nvlink_errors_total", fields.get(key), type=kind)
    put("persistence_mode", ok(snap, "persistence_mode"))
    action = fields.get("recovery_action")
    if action is not None:
        for code, name in RECOVERY_ACTIONS.items():
            put("recovery_action", action == code, action=name)
