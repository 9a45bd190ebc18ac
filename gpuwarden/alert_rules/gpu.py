"""GPU alerts: XIDs, ECC, row remapping, memory, missing GPUs, thermal margin, and the no-data guard."""

from __future__ import annotations

from gpuwarden.alert_rules.mixin import Mixin
from gpuwarden.alert_rules.model import Alert, Group
from gpuwarden.alert_rules.recording import GPU_MEMORY_USED_RATIO
from gpuwarden.alert_rules.series import name
from gpuwarden.collectors.gpu.xid_table import XID_TABLE
from gpuwarden.health import Action

GPU = "{{ $labels.gpu }} ({{ $labels.uuid }}) on {{ $labels.instance }}"
# XIDs whose NVIDIA action is "none" or "restart the application" leave the GPU usable; every other XID,
# and any XID missing from the catalog (xid_table.py, NVIDIA's sheet), needs a reset, a reboot or hands on
# the hardware. XIDs whose action depends on the message (144-150, 154) count as fatal here.
BENIGN_XIDS = sorted(x for x, e in XID_TABLE.items() if e.action in (Action.NONE, Action.RESTART_WORKER))


def xids_for(action: Action) -> list[int]:
    return sorted(x for x, e in XID_TABLE.items() if e.action == action)


def _seconds(window: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(window[:-1]) * units[window[-1]]


def group(m: Mixin) -> Group:
    s = m.selector
    benign = "|".join(map(str, BENIGN_XIDS))
    last_seen = name("gpuwarden_gpu_xid_last_seen_timestamp_seconds")
    fatal = s(f'xid!~"{benign}"')
    uncorrected = s('type="uncorrected"', 'scope="volatile"')
    return Group(
        "gpuwarden-gpu",
        (
            Alert(
                "GpuXidFatal",
                # The last-seen time, not increase() of the counter: an XID's counter is born at 1 when the
                # XID first occurs, and increase() over a series' first sample is 0, so it would miss it.
                f"time() - max by (job, instance, gpu, uuid, xid) ({last_seen}{fatal})"
                f" < {_seconds(m.xid_recent)}",
                "0m",  # the XID already happened; waiting adds nothing
                "critical",
                f"GPU {GPU} reported fatal XID {{{{ $labels.xid }}}}",
                f"XID {{{{ $labels.xid }}}} in the last {m.xid_recent}: NVIDIA's catalog asks for a GPU "
                f"reset, "
                "a reboot or a hardware inspection. Workloads on this GPU are failing or about to.",
            ),
            Alert(
                "GpuEccUncorrectable",
                f"max by (job, instance, gpu, uuid) "
                f"({name('gpuwarden_gpu_ecc_errors_total')}{uncorrected}) > 0",
                "1m",
                "critical",
                f"GPU {GPU} has uncorrectable ECC errors",
                "{{ $value }} uncorrectable ECC errors since the driver loaded: data on this GPU may be "
                "corrupt "
                "until it is reset (the reset also clears the volatile counter).",
            ),
            Alert(
                "GpuRowRemapFailure",
                f"max by (job, instance, gpu, uuid) ({name('gpuwarden_gpu_remap_failed')}{s()}) == 1",
                "1m",
                "critical",
                f"GPU {GPU} failed to remap a memory row",
                "A row remap failed: NVIDIA's criterion to replace the GPU (RMA). Drain it and open a "
                "ticket.",
            ),
            Alert(
                "GpuMemoryNearFull",
                f"{GPU_MEMORY_USED_RATIO}{s()} > {m.gpu_memory_full_ratio}",
                m.gpu_memory_for,
                "warning",
                f"GPU {GPU} memory is {{{{ $value | humanizePercentage }}}} full",
                f"Above {m.gpu_memory_full_ratio:.0%} of device memory for {m.gpu_memory_for}: the next "
                "large batch or KV-cache growth can fail with CUDA out-of-memory.",
            ),
            Alert(
                "GpuMissing",
                f"({name('gpuwarden_gpu_devices')}{s()} < {name('gpuwarden_gpu_devices_expected')}{s()})"
                f" or ({name('gpuwarden_gpu_up')}{s()} == 0)"
                f" or ({name('gpuwarden_gpu_nvml_up')}{s()} == 0)",
                m.gpu_missing_for,
                "critical",
                "A GPU on {{ $labels.instance }} is missing or lost",
                "NVML sees fewer GPUs than expected, reports a GPU lost or needing a reset, or does not "
                f"answer at all, for {m.gpu_missing_for}. The node serves with less capacity or not at all.",
            ),
            Alert(
                "GpuThermalMarginLow",
                f"{name('gpuwarden_gpu_thermal_margin_celsius')}{s()} < {m.thermal_margin_min_celsius}",
                "5m",
                "warning",
                f"GPU {GPU} is {{{{ $value }}}} °C from thermal slowdown",
                f"Less than {m.thermal_margin_min_celsius} °C of thermal margin for 5m: clocks are about to "
                "drop. Check the node's airflow, fans and inlet temperature.",
            ),
            Alert(
                "GpuMetricsMissing",
                f"(up{s()} == 1) unless on (job, instance) {name('gpuwarden_gpu_up')}{s()}",
                m.data_missing_for,
                "warning",
                "The agent on {{ $labels.instance }} reports no GPU",
                f"The agent is up but has exported no GPU series for {m.data_missing_for}: every GPU alert "
                "is blind on this node (collector off, NVML missing, or the driver hung).",
            ),
        ),
    )
