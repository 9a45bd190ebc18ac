"""Fleet overview: traffic, errors and latency against the SLO, GPU load against the scale-down line,
nodes up, remediations in flight and the scale signals."""

from __future__ import annotations

import grafanalib.core as g

from gpuwarden.alert_rules import recording as r
from gpuwarden.alert_rules.mixin import Mixin
from gpuwarden.dashboards.common import frame, node_var
from gpuwarden.dashboards.panels import Board, Q, above, below

UID = "gpuwarden-fleet"


def dashboard(m: Mixin) -> g.Dashboard:
    j, n = m.selector(), m.selector('instance=~"$node"')
    p99, node_p50, node_p99 = (
        m.selector('quantile="0.99"'),
        m.selector('instance=~"$node"', 'quantile="0.5"'),
        m.selector('instance=~"$node"', 'quantile="0.99"'),
    )
    slo, low = m.latency_slo_seconds, m.fleet_utilization_min
    b = Board()
    b.row("Service")
    b.add(
        "stat",
        "Requests per second",
        "Sum over the fleet of each agent's gpuwarden_inference_requests_per_second "
        "(its sliding window over the inference server's counters).",
        "reqps",
        [Q(f"{r.FLEET_REQUESTS}{j}")],
        w=4,
        h=5,
    )
    b.add(
        "stat",
        "Error ratio",
        "Failed over all requests, each node weighed by its load "
        f"(recording rule {r.FLEET_ERROR_RATIO}). Red at the InferenceErrorRatioHigh threshold.",
        "percentunit",
        [Q(f"{r.FLEET_ERROR_RATIO}{j}")],
        w=4,
        h=5,
        steps=above(m.error_ratio_max),
    )
    b.add(
        "stat",
        "p99 latency (worst node)",
        "The highest per-node p99 of gpuwarden_inference_latency_seconds: "
        "quantiles cannot be averaged across nodes. Red at the SLO.",
        "s",
        [Q(f"{r.FLEET_LATENCY}{p99}")],
        w=4,
        h=5,
        steps=above(slo),
    )
    b.add(
        "stat",
        "Fleet GPU utilization",
        "Mean gpuwarden_gpu_utilization_ratio over every GPU of the fleet "
        f"({r.FLEET_GPU_UTILIZATION}); red under the scale-down line.",
        "percentunit",
        [Q(f"{r.FLEET_GPU_UTILIZATION}{j}")],
        w=4,
        h=5,
        steps=below(low),
    )
    b.add(
        "stat",
        "Nodes up",
        "Agents Prometheus scrapes successfully (sum of up) out of the targets discovered in ZooKeeper.",
        "short",
        [Q(f"{r.FLEET_AGENTS_UP}{j}", "up"), Q(f"{r.FLEET_AGENTS}{j}", "discovered")],
        w=4,
        h=5,
    )
    b.add(
        "stat",
        "Active remediations",
        "Nodes inside a disruptive remediation now (sum of gpuwarden_remediation_fleet_leases_held: one "
        "fleet budget lease per node) and requests waiting (gpuwarden_remediation_queue_length).",
        "short",
        [
            Q(f"sum(gpuwarden_remediation_fleet_leases_held{j})", "acting"),
            Q(f"sum(gpuwarden_remediation_queue_length{j})", "queued"),
        ],
        w=4,
        h=5,
        steps=above(1),
    )
    b.add(
        "timeseries",
        "Requests per second by node",
        "gpuwarden_inference_requests_per_second per agent.",
        "reqps",
        [Q(f"gpuwarden_inference_requests_per_second{n}", "{{instance}}")],
        w=12,
    )
    b.add(
        "timeseries",
        "Error ratio by node",
        "gpuwarden_inference_error_ratio per agent; the red line is the InferenceErrorRatioHigh threshold.",
        "percentunit",
        [Q(f"gpuwarden_inference_error_ratio{n}", "{{instance}}")],
        w=12,
        steps=above(m.error_ratio_max),
    )
    b.add(
        "timeseries",
        "Latency p50 / p99 by node",
        "gpuwarden_inference_latency_seconds quantiles per agent; "
        f"the red line is the {slo * 1000:.0f} ms SLO of InferenceP99LatencyHigh.",
        "s",
        [
            Q(f"gpuwarden_inference_latency_seconds{node_p50}", "p50 {{instance}}"),
            Q(f"gpuwarden_inference_latency_seconds{node_p99}", "p99 {{instance}}"),
        ],
        w=12,
        steps=above(slo),
    )
    b.row("GPUs")
    b.add(
        "timeseries",
        "GPU utilization",
        "Fleet mean (the scale-down alert's input) and each node's mean of "
        "gpuwarden_gpu_utilization_ratio; the red line is the scale-down threshold.",
        "percentunit",
        [Q(f"{r.FLEET_GPU_UTILIZATION}{j}", "fleet"), Q(f"{r.NODE_GPU_UTILIZATION}{n}", "{{instance}}")],
        w=12,
        steps=below(low),
        lo=0,
        hi=1,
    )
    b.add(
        "timeseries",
        "GPU memory used",
        "gpuwarden_gpu_memory_used_bytes over memory_total_bytes per GPU; "
        "the red line is GpuMemoryNearFull's threshold.",
        "percentunit",
        [Q(f"{r.GPU_MEMORY_USED_RATIO}{n}", "{{instance}} GPU {{gpu}}")],
        w=12,
        steps=above(m.gpu_memory_full_ratio),
        lo=0,
        hi=1,
    )
    b.add(
        "bargauge",
        "GPUs per node",
        "gpuwarden_gpu_devices (what NVML sees) per agent.",
        "short",
        [Q(f"gpuwarden_gpu_devices{n}", "{{instance}}", instant=True)],
        w=12,
    )
    b.add(
        "stat",
        "GPUs in the fleet",
        f"Count of gpuwarden_gpu_up series ({r.FLEET_GPUS}).",
        "short",
        [Q(f"{r.FLEET_GPUS}{j}")],
        w=12,
    )
    b.row("Scale signals")
    b.add(
        "state-timeline",
        "Scale decisions",
        "gpuwarden_scale_signal: the direction of the fleet leader's last "
        "scale decision (scale_signal playbook).",
        "short",
        [Q(f"max by (direction) (gpuwarden_scale_signal{j})", "{{direction}}")],
        w=12,
    )
    b.add(
        "timeseries",
        "Remediation runs",
        "increase of gpuwarden_remediation_runs_total over the hour, by "
        f"playbook and result ({r.REMEDIATION_RUNS}).",
        "short",
        [Q(f"sum by (playbook, result) ({r.REMEDIATION_RUNS}{j})", "{{playbook}} {{result}}")],
        w=12,
    )
    return frame(
        m,
        UID,
        "gpuwarden / Fleet overview",
        "The inference fleet at a glance.",
        b,
        [node_var(m)],
        [g.DashboardLink(title="gpuwarden", type="dashboards", tags=["gpuwarden"], asDropdown=True)],
    )
