"""Inference engine, ZooKeeper and remediation dashboards."""

from __future__ import annotations

import grafanalib.core as g

from gpuwarden.alert_rules import recording as r
from gpuwarden.alert_rules.mixin import Mixin
from gpuwarden.dashboards.common import frame, node_var, query_var
from gpuwarden.dashboards.panels import Board, Q, above, below

INFERENCE_UID, ZOOKEEPER_UID, REMEDIATION_UID = (
    "gpuwarden-inference",
    "gpuwarden-zookeeper",
    "gpuwarden-remediation",
)
RATE = "$__rate_interval"


def inference(m: Mixin) -> g.Dashboard:
    n = m.selector('instance=~"$node"')
    b = Board()
    b.row("Canary probe")
    b.add(
        "state-timeline",
        "Probe success",
        "gpuwarden_engine_probe_success: 1 when the last canary inference "
        "matched the golden output. 0 for long fires InferenceEngineProbeFailing.",
        "short",
        [Q(f"gpuwarden_engine_probe_success{n}", "{{instance}} {{backend}}")],
        w=12,
        steps=below(1),
    )
    b.add(
        "timeseries",
        "Probe latency",
        "gpuwarden_engine_probe_latency_seconds: readiness check, inference and "
        "comparison of the last canary.",
        "s",
        [Q(f"gpuwarden_engine_probe_latency_seconds{n}", "{{instance}} {{backend}}")],
        w=12,
    )
    b.add(
        "timeseries",
        "Probe failures by reason",
        "rate of gpuwarden_engine_probe_failures_total (timeout, unreachable, wrong_answer, ...).",
        "ops",
        [
            Q(
                f"sum by (instance, reason) (rate(gpuwarden_engine_probe_failures_total{n}[{RATE}]))",
                "{{instance}} {{reason}}",
            )
        ],
        w=12,
    )
    b.add(
        "timeseries",
        "Kernel launch latency",
        "gpuwarden_engine_kernel_launch_latency_seconds: GPU time of a "
        "no-op kernel between two CUDA events (a busy or sick GPU launches slowly).",
        "s",
        [Q(f"gpuwarden_engine_kernel_launch_latency_seconds{n}", "{{instance}} GPU {{gpu}}")],
        w=12,
    )
    b.row("Serving")
    b.add(
        "timeseries",
        "Latency quantiles",
        "gpuwarden_inference_latency_seconds over the agent's window; the red line is the SLO.",
        "s",
        [Q(f"gpuwarden_inference_latency_seconds{n}", "{{instance}} p{{quantile}}")],
        steps=above(m.latency_slo_seconds),
    )
    b.add(
        "timeseries",
        "Time to first token",
        "gpuwarden_inference_time_to_first_token_seconds (streaming LLM servers).",
        "s",
        [Q(f"gpuwarden_inference_time_to_first_token_seconds{n}", "{{instance}} p{{quantile}}")],
    )
    b.add(
        "timeseries",
        "Batch size",
        "gpuwarden_inference_batch_size: inferences per batch execution, or the "
        "running requests of a continuously batching server.",
        "short",
        [Q(f"gpuwarden_inference_batch_size{n}", "{{instance}}")],
    )
    b.add(
        "timeseries",
        "Queue",
        "gpuwarden_inference_queue_length (waiting) and running_requests (executing).",
        "short",
        [
            Q(f"gpuwarden_inference_queue_length{n}", "waiting {{instance}}"),
            Q(f"gpuwarden_inference_running_requests{n}", "running {{instance}}"),
        ],
    )
    b.add(
        "bargauge",
        "KV cache",
        "gpuwarden_inference_kv_cache_usage_ratio.",
        "percentunit",
        [Q(f"gpuwarden_inference_kv_cache_usage_ratio{n}", "{{instance}}", instant=True)],
        steps=above(0.95, 0.8),
        lo=0,
        hi=1,
    )
    b.add(
        "timeseries",
        "Memory fragmentation",
        "gpuwarden_inference_memory_fragmentation_ratio: share of the "
        "allocator's reserved memory no tensor uses.",
        "percentunit",
        [Q(f"gpuwarden_inference_memory_fragmentation_ratio{n}", "{{instance}}")],
        lo=0,
        hi=1,
    )
    b.add(
        "stat",
        "Metrics scrape",
        "gpuwarden_inference_up: 1 when the agent read the inference server's "
        "metrics (InferenceMetricsMissing when 0).",
        "short",
        [Q(f"gpuwarden_inference_up{n}", "{{instance}}")],
        w=12,
        steps=below(1),
    )
    b.add(
        "timeseries",
        "Server restarts",
        "increase of gpuwarden_inference_server_restarts_total: scrapes at "
        "which the server's counters went down.",
        "short",
        [Q(f"increase(gpuwarden_inference_server_restarts_total{n}[{RATE}])", "{{instance}}")],
        w=12,
    )
    return frame(
        m,
        INFERENCE_UID,
        "gpuwarden / Inference engine",
        "The inference worker as the agent sees it.",
        b,
        [node_var(m)],
    )


def zookeeper(m: Mixin) -> g.Dashboard:
    e = m.selector('ensemble=~"$ensemble"')
    ens = query_var(
        "ensemble", "Ensemble", f"label_values(gpuwarden_zookeeper_voters{m.selector()}, ensemble)"
    )
    verdict = m.selector('ensemble=~"$ensemble"', 'verdict!="OK"')
    b = Board()
    b.add(
        "state-timeline",
        "Verdict",
        "gpuwarden_zookeeper_verdict: the checker's verdict (OK, DEGRADED, "
        "NO_QUORUM, SPLIT, UNKNOWN), worst over the agents that check. `gpuwarden zookeeper check` "
        "prints it.",
        "short",
        [Q(f"max by (ensemble, verdict) (gpuwarden_zookeeper_verdict{verdict})", "{{ensemble}} {{verdict}}")],
        w=12,
        steps=above(1),
    )
    b.add(
        "stat",
        "Quorum",
        "min of gpuwarden_zookeeper_quorum_ok over the agents (0 fires ZooKeeperQuorumLost).",
        "short",
        [Q(f"min by (ensemble) (gpuwarden_zookeeper_quorum_ok{e})", "{{ensemble}}")],
        w=4,
        steps=below(1),
    )
    b.add(
        "stat",
        "Tolerable failures",
        "gpuwarden_zookeeper_tolerable_failures: voters that may still fail (0 fires ZooKeeperQuorumAtRisk).",
        "short",
        [Q(f"min by (ensemble) (gpuwarden_zookeeper_tolerable_failures{e})", "{{ensemble}}")],
        w=4,
        steps=below(1),
    )
    b.add(
        "stat",
        "Leaders",
        "gpuwarden_zookeeper_leaders: servers that report Mode leader (exactly 1).",
        "short",
        [Q(f"max by (ensemble) (gpuwarden_zookeeper_leaders{e})", "{{ensemble}}")],
        w=4,
        steps=above(2),
    )
    b.add(
        "timeseries",
        "Synced followers against voters",
        "gpuwarden_zookeeper_synced_followers (leader's "
        "zk_synced_followers) against gpuwarden_zookeeper_voters; quorum needs floor(voters/2).",
        "short",
        [
            Q(f"max by (ensemble) (gpuwarden_zookeeper_synced_followers{e})", "synced {{ensemble}}"),
            Q(f"max by (ensemble) (gpuwarden_zookeeper_voters{e})", "voters {{ensemble}}"),
        ],
        w=12,
    )
    b.add(
        "state-timeline",
        "Server mode",
        "gpuwarden_zookeeper_server_mode: each server's mode.",
        "short",
        [Q(f"max by (server, mode) (gpuwarden_zookeeper_server_mode{e}) == 1", "{{server}} {{mode}}")],
        w=12,
    )
    b.add(
        "timeseries",
        "Probe latency",
        "gpuwarden_zookeeper_probe_duration_seconds: the four-letter-word round trip per server.",
        "s",
        [Q(f"max by (server) (gpuwarden_zookeeper_probe_duration_seconds{e})", "{{server}}")],
        w=12,
    )
    b.add(
        "timeseries",
        "Request latency",
        "gpuwarden_zookeeper_avg_latency_seconds (mntr zk_avg_latency).",
        "s",
        [Q(f"max by (server) (gpuwarden_zookeeper_avg_latency_seconds{e})", "{{server}}")],
        w=12,
    )
    b.add(
        "timeseries",
        "Outstanding requests",
        "gpuwarden_zookeeper_outstanding_requests.",
        "short",
        [Q(f"max by (server) (gpuwarden_zookeeper_outstanding_requests{e})", "{{server}}")],
        w=12,
    )
    return frame(m, ZOOKEEPER_UID, "gpuwarden / ZooKeeper", "Quorum of the fleet's ensemble.", b, [ens])


# The agent serves its audit log at GET /v1/runs (what `gpuwarden runs` reads); instance is the node's name.
AUDIT_URL = "https://${node}:9837/v1/runs"


def remediation(m: Mixin, audit_url: str = AUDIT_URL) -> g.Dashboard:
    n = m.selector('instance=~"$node"')
    np = m.selector('instance=~"$node"', 'playbook=~"$playbook"')
    p = m.selector('playbook=~"$playbook"')
    pb = query_var(
        "playbook", "Playbook", f"label_values(gpuwarden_remediation_runs_total{m.selector()}, playbook)"
    )
    b = Board()
    b.add(
        "timeseries",
        "Runs by playbook and result",
        "increase of gpuwarden_remediation_runs_total.",
        "short",
        [
            Q(
                f"sum by (playbook, result) (increase(gpuwarden_remediation_runs_total{np}[{RATE}]))",
                "{{playbook}} {{result}}",
            )
        ],
        w=12,
    )
    b.add(
        "table",
        "Runs in the last hour",
        f"{r.REMEDIATION_RUNS}: runs per playbook and result over the hour.",
        "short",
        [Q(f"{r.REMEDIATION_RUNS}{p}", instant=True, format="table")],
        w=12,
    )
    b.add(
        "state-timeline",
        "Exhausted",
        "gpuwarden_remediation_exhausted: 1 when a playbook spent its attempt budget (RemediationExhausted).",
        "short",
        [Q(f"gpuwarden_remediation_exhausted{np}", "{{instance}} {{playbook}}")],
        w=12,
        steps=above(1),
    )
    b.add(
        "state-timeline",
        "Paused",
        "gpuwarden_remediation_paused: `gpuwarden pause` sets it.",
        "short",
        [Q(f"gpuwarden_remediation_paused{n}", "{{instance}} {{playbook}}")],
        w=12,
        steps=above(1),
    )
    b.add(
        "state-timeline",
        "Storm mode",
        "gpuwarden_remediation_storm: 1 when too many disruptive runs stopped the engine; it acts on nothing "
        "until `gpuwarden reset` (RemediationStorm).",
        "short",
        [Q(f"gpuwarden_remediation_storm{n}", "{{instance}}")],
        w=12,
        steps=above(1),
    )
    b.add(
        "table",
        "Quarantined GPUs",
        "gpuwarden_remediation_gpu_quarantined: GPUs the gpu_quarantine playbook took out of service, until "
        "`gpuwarden quarantine release` (GpuQuarantined).",
        "short",
        [Q(f"gpuwarden_remediation_gpu_quarantined{n} == 1", instant=True, format="table")],
        w=12,
    )
    b.add(
        "stat",
        "Fleet leases in use",
        "Sum of gpuwarden_remediation_fleet_leases_held: nodes inside a disruptive "
        "remediation now (the fleet budget caps it).",
        "short",
        [Q(f"sum(gpuwarden_remediation_fleet_leases_held{m.selector()})")],
        w=6,
    )
    b.add(
        "heatmap",
        "Run duration",
        "gpuwarden_remediation_run_duration_seconds buckets: trigger to verified outcome.",
        "s",
        [
            Q(
                f"sum by (le) (increase(gpuwarden_remediation_run_duration_seconds_bucket{np}[{RATE}]))",
                "{{le}}",
                format="heatmap",
            )
        ],
        w=18,
    )
    audit = [
        g.DashboardLink(
            title="Audit log tail (gpuwarden runs)", type="link", uri=audit_url, icon="doc", targetBlank=True
        )
    ]
    return frame(
        m,
        REMEDIATION_UID,
        "gpuwarden / Remediation",
        "What the agents did, and why they stopped. The audit log itself: `gpuwarden runs` on the node.",
        b,
        [node_var(m), pb],
        audit if audit_url else None,
    )
