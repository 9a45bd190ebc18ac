"""GPU health: XID timeline by NVIDIA's action, ECC, remapped rows, thermal margin, PCIe downtraining."""

from __future__ import annotations

import grafanalib.core as g

from gpuwarden.alert_rules.gpu import xids_for
from gpuwarden.alert_rules.mixin import Mixin
from gpuwarden.dashboards.common import frame, gpu_var, node_var
from gpuwarden.dashboards.panels import Board, Q, above, below
from gpuwarden.health import Action

UID = "gpuwarden-gpu-health"
ACTIONS = (Action.RESTART_WORKER, Action.RESET_GPU, Action.REBOOT_NODE, Action.INSPECT_HARDWARE)


def dashboard(m: Mixin) -> g.Dashboard:
    ng = m.selector('instance=~"$node"', 'gpu=~"$gpu"')
    uncorrected = m.selector('instance=~"$node"', 'gpu=~"$gpu"', 'type="uncorrected"')
    b = Board()
    xid_queries = []
    for action in ACTIONS:
        codes = "|".join(map(str, xids_for(action)))
        sel = m.selector('instance=~"$node"', 'gpu=~"$gpu"', f'xid=~"{codes}"')
        xid_queries.append(
            Q(
                f"sum by (instance, gpu) (increase(gpuwarden_gpu_xid_errors_total{sel}[$__rate_interval]))"
                " > 0",
                f"{action} {{{{instance}}}} GPU {{{{gpu}}}}",
            )
        )
    b.add(
        "state-timeline",
        "XIDs by action",
        "gpuwarden_gpu_xid_errors_total grouped by the action NVIDIA's XID "
        "catalog gives each code (gpuwarden/collectors/gpu/xid.py).",
        "short",
        xid_queries,
        w=24,
    )
    b.add(
        "timeseries",
        "Uncorrectable ECC errors",
        'gpuwarden_gpu_ecc_errors_total{type="uncorrected"}; any volatile count fires GpuEccUncorrectable.',
        "short",
        [Q(f"gpuwarden_gpu_ecc_errors_total{uncorrected}", "{{instance}} GPU {{gpu}} {{scope}}")],
        w=12,
        steps=above(1),
    )
    b.add(
        "table",
        "Remapped rows",
        "gpuwarden_gpu_remapped_rows by cause, with remap_pending and remap_failed.",
        "short",
        [
            Q(f"gpuwarden_gpu_remapped_rows{ng}", instant=True, format="table"),
            Q(f"gpuwarden_gpu_remap_failed{ng}", instant=True, format="table"),
        ],
        w=12,
        steps=above(1),
    )
    b.add(
        "timeseries",
        "Thermal margin",
        "gpuwarden_gpu_thermal_margin_celsius: degrees before the GPU slows "
        "down; the red line is GpuThermalMarginLow's threshold.",
        "celsius",
        [Q(f"gpuwarden_gpu_thermal_margin_celsius{ng}", "{{instance}} GPU {{gpu}}")],
        w=12,
        steps=below(m.thermal_margin_min_celsius),
    )
    b.add(
        "gauge",
        "Lowest thermal margin",
        "The smallest gpuwarden_gpu_thermal_margin_celsius of the selection.",
        "celsius",
        [Q(f"min(gpuwarden_gpu_thermal_margin_celsius{ng})")],
        w=4,
        steps=below(m.thermal_margin_min_celsius),
        lo=0,
        hi=40,
    )
    b.add(
        "bargauge",
        "PCIe link width",
        "gpuwarden_gpu_pcie_link_width over pcie_link_width_max: below 1 the "
        "link trained down (the generation drops at idle by design, the width does not).",
        "percentunit",
        [
            Q(
                f"gpuwarden_gpu_pcie_link_width{ng} / gpuwarden_gpu_pcie_link_width_max{ng}",
                "{{instance}} GPU {{gpu}}",
                instant=True,
            )
        ],
        w=8,
        steps=below(1),
        lo=0,
        hi=1,
    )
    b.add(
        "timeseries",
        "PCIe replays",
        "rate of gpuwarden_gpu_pcie_replays_total: link-level retransmissions.",
        "ops",
        [Q(f"rate(gpuwarden_gpu_pcie_replays_total{ng}[$__rate_interval])", "{{instance}} GPU {{gpu}}")],
        w=12,
    )
    b.add(
        "stat",
        "GPUs up",
        "gpuwarden_gpu_up: 0 when NVML says the GPU is lost or needs a reset (GpuMissing).",
        "short",
        [Q(f"gpuwarden_gpu_up{ng}", "{{instance}} GPU {{gpu}}")],
        w=12,
        steps=below(1),
    )
    return frame(
        m, UID, "gpuwarden / GPU health", "Hardware health of the GPUs.", b, [node_var(m), gpu_var(m)]
    )
