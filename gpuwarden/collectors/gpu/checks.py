"""Health checks for one GPU, from its NVML answers and the previous cycle's.

Thresholds and actions, with their sources:
- GPU_IS_LOST → reboot the node; RESET_REQUIRED → reset the GPU (gpud treats both as Unhealthy, never as
  a crash: gpud#810, ecc/component.go).
- Remap pending → reset the GPU; remap failure → inspect (RMA): NVIDIA's row-remapping guide, DCGM
  DCGM_FR_PENDING_ROW_REMAP → COMPONENT_RESET, gpud remapped-rows.
- Volatile uncorrectable ECC → reset (NVSentinel VOLATILE_DBE_DETECTED → COMPONENT_RESET). A burst of
  corrected errors (an "ECC storm", NVML's SingleBitEccErrorStorm event) → DEGRADED, inspect.
- The driver's recovery action (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION) is followed as given.
- Thermal margin below the configured minimum, or HW slowdown bits → DEGRADED (gpud temperature and
  hw-slowdown components; NVSentinel GpuThermalMarginWatch fires at a 2-3 °C margin).
- PCIe width below its maximum is a downtrained link → DEGRADED, inspect. Generation is not judged: GPUs
  lower it at idle to save power.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpuwarden.collectors.gpu.backend import GPU_IS_LOST, RESET_REQUIRED, NvmlCallError
from gpuwarden.collectors.gpu.metrics import CLOCK_EVENT_BITS, ok
from gpuwarden.health import Action, HealthResult, State

HW_SLOWDOWN_BITS = (
    CLOCK_EVENT_BITS["hw_slowdown"]
    | CLOCK_EVENT_BITS["hw_thermal_slowdown"]
    | CLOCK_EVENT_BITS["hw_power_brake_slowdown"]
)


def gpu_labels(gpu: str, uuid: str) -> dict[str, str]:
    """The subject of a per-GPU result: its index (or PCI id) and, once NVML named it, its UUID."""
    return {"gpu": gpu, "uuid": uuid} if uuid else {"gpu": gpu}


def fatal_error(snap: dict[str, Any]) -> NvmlCallError | None:
    for value in snap.values():
        if isinstance(value, NvmlCallError) and value.code in (GPU_IS_LOST, RESET_REQUIRED):
            return value
    return None


def device_health(component: str, labels: Mapping[str, str], err: NvmlCallError | None) -> HealthResult:
    """`err`: the snapshot's `fatal_error`, found once by the caller, which also needs it."""
    if err is None:
        return HealthResult(component, State.HEALTHY, "answers NVML", labels=labels)
    if err.code == GPU_IS_LOST:
        return HealthResult(
            component, State.UNHEALTHY, f"GPU is lost ({err})", Action.REBOOT_NODE, labels=labels
        )
    return HealthResult(
        component, State.UNHEALTHY, f"GPU needs a reset ({err})", Action.RESET_GPU, labels=labels
    )


def memory_health(
    component: str,
    labels: Mapping[str, str],
    snap: dict[str, Any],
    previous: dict[str, Any] | None,
    storm_errors: int,
) -> HealthResult:
    remap = ok(snap, "remapped_rows")
    if remap is not None and remap[3]:
        return HealthResult(
            component,
            State.UNHEALTHY,
            "row remapping failed: replace the GPU (RMA)",
            Action.INSPECT_HARDWARE,
            labels=labels,
        )
    if remap is not None and remap[2]:
        return HealthResult(
            component,
            State.UNHEALTHY,
            "row remap pending: reset the GPU to apply it",
            Action.RESET_GPU,
            labels=labels,
        )
    if ok(snap, "retired_pages_pending"):
        return HealthResult(
            component,
            State.UNHEALTHY,
            "page retirement pending: reset the GPU",
            Action.RESET_GPU,
            labels=labels,
        )
    uncorrected = ok(snap, "ecc_uncorrected_volatile")
    if uncorrected:
        return HealthResult(
            component,
            State.UNHEALTHY,
            f"{uncorrected} uncorrectable ECC errors since the driver loaded",
            Action.RESET_GPU,
            labels=labels,
        )
    corrected = ok(snap, "ecc_corrected_volatile")
    before = ok(previous or {}, "ecc_corrected_volatile")
    if corrected is not None and before is not None and corrected - before >= storm_errors:
        return HealthResult(
            component,
            State.DEGRADED,
            f"ECC storm: {corrected - before} corrected errors since the last cycle "
            f"(threshold {storm_errors})",
            Action.INSPECT_HARDWARE,
            labels=labels,
        )
    return HealthResult(
        component, State.HEALTHY, "no pending remap, no uncorrectable ECC errors", labels=labels
    )


# NVML_GPU_RECOVERY_ACTION_* → the verdict; a code not listed here is DEGRADED, inspect.
RECOVERY_VERDICTS = {
    0: (State.HEALTHY, "driver asks for no recovery action", Action.NONE),
    1: (State.UNHEALTHY, "driver asks for a GPU reset", Action.RESET_GPU),
    2: (State.UNHEALTHY, "driver asks for a node reboot", Action.REBOOT_NODE),
    3: (State.DEGRADED, "driver asks to drain peer-to-peer traffic", Action.RESET_GPU),
    4: (State.UNHEALTHY, "driver asks to drain and reset the GPU", Action.RESET_GPU),
    6: (State.UNHEALTHY, "driver asks for a PCIe bus reset", Action.RESET_GPU),
    7: (State.UNHEALTHY, "driver asks for a system reboot", Action.REBOOT_NODE),
}


def recovery_health(component: str, labels: Mapping[str, str], snap: dict[str, Any]) -> HealthResult | None:
    fields = ok(snap, "fields_slow") or {}
    action = fields.get("recovery_action")
    if action is None or isinstance(action, dict):
        return None  # the driver has no recovery-action field (before R550): nothing to judge
    state, reason, act = RECOVERY_VERDICTS.get(
        int(action), (State.DEGRADED, f"driver recovery action {action}", Action.INSPECT_HARDWARE)
    )
    return HealthResult(component, state, reason, act, labels=labels)


def thermal_health(
    component: str, labels: Mapping[str, str], snap: dict[str, Any], margin_min: float
) -> HealthResult:
    margin = ok(snap, "thermal_margin")
    reasons = ok(snap, "clock_event_reasons") or 0
    if margin is not None and margin < margin_min:
        return HealthResult(
            component,
            State.DEGRADED,
            f"{margin} °C from thermal slowdown (minimum {margin_min:g} °C)",
            Action.INSPECT_HARDWARE,
            labels=labels,
        )
    if reasons & HW_SLOWDOWN_BITS:
        return HealthResult(
            component,
            State.DEGRADED,
            f"hardware slowdown active (reasons 0x{reasons:x})",
            Action.INSPECT_HARDWARE,
            labels=labels,
        )
    if margin is None:
        return HealthResult(component, State.UNKNOWN, "no thermal margin reported", labels=labels)
    return HealthResult(component, State.HEALTHY, f"{margin} °C from thermal slowdown", labels=labels)


def pcie_health(
    component: str, labels: Mapping[str, str], snap: dict[str, Any], replay_burst: int
) -> HealthResult | None:
    width, width_max = ok(snap, "pcie_width"), ok(snap, "pcie_width_max")
    if width is None or width_max is None:
        return None
    if width < width_max:
        return HealthResult(
            component,
            State.DEGRADED,
            f"PCIe link downtrained: x{width} of x{width_max}",
            Action.INSPECT_HARDWARE,
            labels=labels,
        )
    delta = snap.get("pcie_replays_delta")
    if delta is not None and delta >= replay_burst:
        return HealthResult(
            component,
            State.DEGRADED,
            f"{delta} PCIe replays between the last two reads",
            Action.INSPECT_HARDWARE,
            labels=labels,
        )
    return HealthResult(component, State.HEALTHY, f"PCIe x{width} of x{width_max}", labels=labels)
