"""One GPU's NVML answers → samples of the catalog's families (metrics.py), every cycle and every slow read.

Units are Prometheus base units: NVML's milliwatts, millijoules, MHz, KB/s and nanoseconds are converted
here. A signal NVML answers NOT_SUPPORTED for is simply absent (h200-baseline: NVLink fields on an H200).
"""

from __future__ import annotations

from typing import Any

from gpuwarden.catalog import Families, checked_labels
from gpuwarden.collectors.gpu.metrics import (
    CATALOG,
    CLOCK_EVENT_BITS,
    CLOCK_EVENT_FIELDS,
    RECOVERY_ACTIONS,
    ok,
)


class Labels:
    """One GPU's label dicts, one per series, built and checked against the catalog once per GPU (and UUID),
    then shared by every cycle's samples (nothing mutates a sample's labels). A cycle then only pairs
    values with them (`add_fast`): checking and building labels per sample was most of what a cycle's
    Python cost (bench/gpu.py part 3)."""

    def __init__(self, gpu: str, uuid: str) -> None:
        self.gpu, self.uuid = gpu, uuid
        self.base = _checked(
            "utilization_ratio", {"gpu": gpu, "uuid": uuid}
        )  # families labelled by GPU alone
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
