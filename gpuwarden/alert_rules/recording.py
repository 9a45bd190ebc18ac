"""Recording rules for the fleet aggregates that the dashboards and the alerts share.

Names follow Prometheus' `level:metric:operations` convention. A recorded series keeps `job`, so the same
`{job="..."}` selector finds it; `fleet:` rules aggregate every agent of the job.
"""

from __future__ import annotations

from gpuwarden.alert_rules.mixin import Mixin
from gpuwarden.alert_rules.model import Group, Record
from gpuwarden.alert_rules.series import name

FLEET_GPU_UTILIZATION = "job:gpuwarden_gpu_utilization_ratio:avg"
NODE_GPU_UTILIZATION = "instance:gpuwarden_gpu_utilization_ratio:avg"
GPU_MEMORY_USED_RATIO = "gpu:gpuwarden_gpu_memory_used_bytes:ratio"
FLEET_REQUESTS = "job:gpuwarden_inference_requests_per_second:sum"
FLEET_ERROR_RATIO = "job:gpuwarden_inference_error_ratio:weighted"
FLEET_LATENCY = "job:gpuwarden_inference_latency_seconds:max"
FLEET_AGENTS_UP = "job:gpuwarden_agents_up:sum"
FLEET_AGENTS = "job:gpuwarden_agents:count"
FLEET_GPUS = "job:gpuwarden_gpus:count"
REMEDIATION_RUNS = "job:gpuwarden_remediation_runs:increase1h"


def group(m: Mixin) -> Group:
    s = m.selector()
    util = name("gpuwarden_gpu_utilization_ratio")
    rps, err = name("gpuwarden_inference_requests_per_second"), name("gpuwarden_inference_error_ratio")
    used, total = name("gpuwarden_gpu_memory_used_bytes"), name("gpuwarden_gpu_memory_total_bytes")
    runs = name("gpuwarden_remediation_runs_total")
    return Group(
        "gpuwarden-recording",
        (
            # The mean over every GPU of the fleet, not a mean of node means: a node with 8 GPUs weighs 8.
            Record(FLEET_GPU_UTILIZATION, f"avg by (job) ({util}{s})"),
            Record(NODE_GPU_UTILIZATION, f"avg by (job, instance) ({util}{s})"),
            Record(GPU_MEMORY_USED_RATIO, f"{used}{s} / {total}{s}"),
            Record(FLEET_REQUESTS, f"sum by (job) ({rps}{s})"),
            # Each node's error ratio weighed by its load: an idle node's 1 failed request of 1 is not 100 %.
            Record(FLEET_ERROR_RATIO, f"sum by (job) ({err}{s} * {rps}{s}) / sum by (job) ({rps}{s})"),
            # Quantiles from per-node windows cannot be averaged: the worst node bounds the fleet's p99.
            Record(FLEET_LATENCY, f"max by (job, quantile) (gpuwarden_inference_latency_seconds{s})"),
            Record(FLEET_AGENTS_UP, f"sum by (job) (up{s})"),
            Record(FLEET_AGENTS, f"count by (job) (up{s})"),
            Record(FLEET_GPUS, f"count by (job) ({name('gpuwarden_gpu_up')}{s})"),
            Record(
                REMEDIATION_RUNS,
                f"sum by (job, playbook, result) (increase({runs}{s}[{m.remediation_window}]))",
            ),
        ),
    )


RECORDED = (
    FLEET_GPU_UTILIZATION,
    NODE_GPU_UTILIZATION,
    GPU_MEMORY_USED_RATIO,
    FLEET_REQUESTS,
    FLEET_ERROR_RATIO,
    FLEET_LATENCY,
    FLEET_AGENTS_UP,
    FLEET_AGENTS,
    FLEET_GPUS,
    REMEDIATION_RUNS,
)
