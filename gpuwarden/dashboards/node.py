"""Node drill-down: every GPU signal, clock-event reasons, XIDs, ECC and row remapping, network and
InfiniBand, peer round-trip times, and the doctor's findings for one node."""

from __future__ import annotations

import grafanalib.core as g

from gpuwarden.alert_rules.mixin import Mixin
from gpuwarden.dashboards.common import frame, gpu_var, node_var
from gpuwarden.dashboards.panels import Board, Q, above, below

UID = "gpuwarden-node"
RATE = "$__rate_interval"


def dashboard(m: Mixin) -> g.Dashboard:
    n = m.selector('instance=~"$node"')
    ng = m.selector('instance=~"$node"', 'gpu=~"$gpu"')
    b = Board()
    b.row("GPUs")
    b.add(
        "timeseries",
        "Utilization",
        "gpuwarden_gpu_utilization_ratio (NVML: share of the sample period a kernel ran).",
        "percentunit",
        [Q(f"gpuwarden_gpu_utilization_ratio{ng}", "GPU {{gpu}}")],
        lo=0,
        hi=1,
    )
    b.add(
        "timeseries",
        "Memory used",
        "gpuwarden_gpu_memory_used_bytes; the red line is GpuMemoryNearFull's share of memory_total_bytes.",
        "bytes",
        [
            Q(f"gpuwarden_gpu_memory_used_bytes{ng}", "used GPU {{gpu}}"),
            Q(f"gpuwarden_gpu_memory_total_bytes{ng}", "total GPU {{gpu}}"),
        ],
    )
    b.add(
        "timeseries",
        "Temperature",
        "gpuwarden_gpu_temperature_celsius (core) and memory_temperature_celsius (HBM).",
        "celsius",
        [
            Q(f"gpuwarden_gpu_temperature_celsius{ng}", "core GPU {{gpu}}"),
            Q(f"gpuwarden_gpu_memory_temperature_celsius{ng}", "HBM GPU {{gpu}}"),
        ],
    )
    b.add(
        "timeseries",
        "Power",
        "gpuwarden_gpu_power_watts against power_limit_watts.",
        "watt",
        [
            Q(f"gpuwarden_gpu_power_watts{ng}", "draw GPU {{gpu}}"),
            Q(f"gpuwarden_gpu_power_limit_watts{ng}", "limit GPU {{gpu}}"),
        ],
    )
    b.add(
        "timeseries",
        "Clocks",
        "gpuwarden_gpu_clock_hertz by clock (graphics, sm, memory).",
        "hertz",
        [Q(f"gpuwarden_gpu_clock_hertz{ng}", "{{clock}} GPU {{gpu}}")],
    )
    b.add(
        "state-timeline",
        "Clock-event reasons",
        "gpuwarden_gpu_clock_event_reason: 1 while NVML says this "
        "reason holds the clocks down (power cap, thermal, power brake...).",
        "short",
        [Q(f"max by (gpu, reason) (gpuwarden_gpu_clock_event_reason{ng})", "GPU {{gpu}} {{reason}}")],
    )
    b.add(
        "timeseries",
        "XIDs",
        "increase of gpuwarden_gpu_xid_errors_total by XID code (NVML events and the "
        "kernel log, de-duplicated).",
        "short",
        [
            Q(
                f"sum by (gpu, xid) (increase(gpuwarden_gpu_xid_errors_total{ng}[{RATE}]))",
                "GPU {{gpu}} XID {{xid}}",
            )
        ],
    )
    b.add(
        "timeseries",
        "ECC errors",
        "gpuwarden_gpu_ecc_errors_total; volatile counts since the driver loaded. "
        "Any uncorrected error fires GpuEccUncorrectable.",
        "short",
        [Q(f"gpuwarden_gpu_ecc_errors_total{ng}", "GPU {{gpu}} {{type}} {{scope}}")],
        steps=above(1),
    )
    b.add(
        "stat",
        "Row remapping",
        "gpuwarden_gpu_remapped_rows by cause, remap_pending (reset needed) and remap_failed (RMA).",
        "short",
        [
            Q(f"gpuwarden_gpu_remapped_rows{ng}", "GPU {{gpu}} {{cause}}"),
            Q(f"gpuwarden_gpu_remap_pending{ng}", "GPU {{gpu}} pending"),
            Q(f"gpuwarden_gpu_remap_failed{ng}", "GPU {{gpu}} failed"),
        ],
        steps=above(1),
    )
    b.row("Network")
    b.add(
        "timeseries",
        "Interface throughput",
        "rate of gpuwarden_network_{receive,transmit}_bytes_total (/proc/net/dev).",
        "Bps",
        [
            Q(f"rate(gpuwarden_network_receive_bytes_total{n}[{RATE}])", "rx {{interface}}"),
            Q(f"rate(gpuwarden_network_transmit_bytes_total{n}[{RATE}])", "tx {{interface}}"),
        ],
    )
    b.add(
        "timeseries",
        "Interface error ratio",
        "gpuwarden_network_error_ratio: errored over all packets in the last interval.",
        "percentunit",
        [Q(f"gpuwarden_network_error_ratio{n}", "{{interface}}")],
    )
    b.add(
        "timeseries",
        "InfiniBand throughput",
        "rate of gpuwarden_network_infiniband_{receive,transmit}_bytes_total per port.",
        "Bps",
        [
            Q(f"rate(gpuwarden_network_infiniband_receive_bytes_total{n}[{RATE}])", "rx {{device}}/{{port}}"),
            Q(
                f"rate(gpuwarden_network_infiniband_transmit_bytes_total{n}[{RATE}])",
                "tx {{device}}/{{port}}",
            ),
        ],
    )
    b.add(
        "state-timeline",
        "InfiniBand ports up",
        "gpuwarden_network_infiniband_port_up: 1 when ACTIVE and LinkUp.",
        "short",
        [Q(f"gpuwarden_network_infiniband_port_up{n}", "{{device}}/{{port}}")],
        steps=below(1),
    )
    b.add(
        "heatmap",
        "Peer round-trip time",
        "gpuwarden_network_peer_rtt_seconds buckets: TCP connect time to "
        "the configured peers (successful probes).",
        "s",
        [
            Q(
                f"sum by (le) (increase(gpuwarden_network_peer_rtt_seconds_bucket{n}[{RATE}]))",
                "{{le}}",
                format="heatmap",
            )
        ],
    )
    b.add(
        "state-timeline",
        "Peers reachable",
        "gpuwarden_network_peer_up: 1 when this cycle's probe to the peer succeeded.",
        "short",
        [Q(f"gpuwarden_network_peer_up{n}", "{{peer}}")],
        steps=below(1),
    )
    b.row("Doctor and agent")
    b.add(
        "table",
        "Doctor findings",
        "gpuwarden_doctor_check_status: the current status of every doctor check "
        "(`gpuwarden doctor` runs the same checks).",
        "short",
        [Q(f"gpuwarden_doctor_check_status{n} == 1", instant=True, format="table")],
        w=12,
    )
    b.add(
        "stat",
        "Failing checks",
        "gpuwarden_doctor_failed_checks.",
        "short",
        [Q(f"gpuwarden_doctor_failed_checks{n}", "{{instance}}")],
        w=4,
        steps=above(1),
    )
    b.add(
        "bargauge",
        "Collector success",
        "gpuwarden_collector_success: 0 means the collector's series are "
        "dropped (GpuwardenCollectorFailing).",
        "short",
        [Q(f"gpuwarden_collector_success{n}", "{{collector}}", instant=True)],
        w=8,
        steps=below(1),
        lo=0,
        hi=1,
    )
    return frame(
        m,
        UID,
        "gpuwarden / Node",
        "Everything one node's agent reports.",
        b,
        [node_var(m, multi=False), gpu_var(m)],
    )
