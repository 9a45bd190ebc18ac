"""Inference, ZooKeeper, remediation and agent alerts."""

from __future__ import annotations

from gpuwarden.alert_rules.mixin import Mixin
from gpuwarden.alert_rules.model import Alert, Group
from gpuwarden.alert_rules.recording import FLEET_GPU_UTILIZATION
from gpuwarden.alert_rules.series import name

SCALE = {"playbook": "scale_signal"}  # routed to the agents' /v1/alerts


def inference(m: Mixin) -> Group:
    s = m.selector
    p99 = s('quantile="0.99"')
    return Group(
        "gpuwarden-inference",
        (
            Alert(
                "InferenceP99LatencyHigh",
                f"{name('gpuwarden_inference_latency_seconds')}{p99} > {m.latency_slo_seconds}",
                m.latency_for,
                "warning",
                "Inference p99 latency on {{ $labels.instance }} is {{ $value | humanizeDuration }}",
                f"p99 above the {m.latency_slo_seconds * 1000:.0f} ms SLO for {m.latency_for}: the node is "
                "saturated. The scale_signal playbook asks for more capacity.",
                SCALE,
            ),
            Alert(
                "GpuFleetUnderutilized",
                f"{FLEET_GPU_UTILIZATION}{s()} < {m.fleet_utilization_min}",
                m.fleet_utilization_for,
                "info",
                "Fleet GPU utilization is {{ $value | humanizePercentage }}",
                f"The mean over every GPU of the fleet stayed below {m.fleet_utilization_min:.0%} for "
                f"{m.fleet_utilization_for}. The scale_signal playbook asks for one node fewer.",
                SCALE,
            ),
            Alert(
                "InferenceErrorRatioHigh",
                f"{name('gpuwarden_inference_error_ratio')}{s()} > {m.error_ratio_max}",
                m.error_ratio_for,
                "critical",
                "{{ $value | humanizePercentage }} of inference requests fail on {{ $labels.instance }}",
                f"More than {m.error_ratio_max:.0%} of requests failed for {m.error_ratio_for}: users see "
                "errors. Look at the worker log for CUDA out-of-memory or a crashed model.",
            ),
            Alert(
                "InferenceEngineProbeFailing",
                f"{name('gpuwarden_engine_probe_success')}{s()} == 0",
                m.probe_failing_for,
                "critical",
                "Canary inference fails on {{ $labels.instance }} ({{ $labels.backend }})",
                f"The canary probe got no answer or a wrong answer for {m.probe_failing_for}: the engine "
                "is hung, crashed, or computes wrong results.",
            ),
            Alert(
                "InferenceMetricsMissing",
                f"{name('gpuwarden_inference_up')}{s()} == 0",
                m.data_missing_for,
                "warning",
                "The agent on {{ $labels.instance }} cannot read the inference server's metrics",
                f"No inference metrics for {m.data_missing_for}: the latency, error and scale alerts are "
                "blind on this node.",
            ),
        ),
    )


def zookeeper(m: Mixin) -> Group:
    s = m.selector
    ok = name("gpuwarden_zookeeper_quorum_ok")
    unknown = s('verdict="UNKNOWN"')
    return Group(
        "gpuwarden-zookeeper",
        (
            Alert(
                "ZooKeeperQuorumLost",
                # Every agent that checks the ensemble agrees: one node cut off from it is not a lost quorum.
                f"max by (job, ensemble) ({ok}{s()}) == 0",
                m.quorum_lost_for,
                "critical",
                "ZooKeeper ensemble {{ $labels.ensemble }} has no quorum",
                "No majority of voters follows one leader: agent registration, fleet budgets and leader "
                "election all fail; disruptive remediations fail closed.",
            ),
            Alert(
                "ZooKeeperQuorumAtRisk",
                f"max by (job, ensemble) ({name('gpuwarden_zookeeper_tolerable_failures')}{s()}) == 0"
                f" and on (job, ensemble) max by (job, ensemble) ({ok}{s()}) == 1",
                m.quorum_at_risk_for,
                "warning",
                "ZooKeeper ensemble {{ $labels.ensemble }} cannot lose another server",
                f"Quorum holds with no failure to spare for {m.quorum_at_risk_for}: one more server down "
                "loses it. Bring the missing voter back.",
            ),
            Alert(
                "ZooKeeperCheckUnknown",
                f"max by (job, ensemble) ({name('gpuwarden_zookeeper_verdict')}{unknown}) == 1",
                m.data_missing_for,
                "warning",
                "The quorum of {{ $labels.ensemble }} cannot be judged",
                "The servers refuse the four-letter words the check needs (4lw.commands.whitelist): quorum "
                "loss would go unseen.",
            ),
        ),
    )


def remediation(m: Mixin) -> Group:
    """The acting half: the engine stopped acting (exhausted, storm, paused and forgotten) or took a GPU out.
    Their `playbook` label names the engine's own state: routing keeps them away from the agents."""
    s = m.selector
    since = name("gpuwarden_remediation_paused_since_timestamp_seconds")
    paused_max_s = m.remediation_paused_max_hours * 3600
    return Group(
        "gpuwarden-remediation",
        (
            Alert(
                "RemediationExhausted",
                f"max by (job, instance, playbook) ({name('gpuwarden_remediation_exhausted')}{s()}) == 1",
                m.remediation_exhausted_for,
                "critical",
                "Playbook {{ $labels.playbook }} gave up on {{ $labels.instance }}",
                "The playbook spent its attempt budget and stopped acting: the fault it treats is still "
                "there and needs a human. `gpuwarden reset --playbook` re-arms it once the cause is fixed.",
            ),
            Alert(
                "RemediationStorm",
                f"max by (job, instance) ({name('gpuwarden_remediation_storm')}{s()}) == 1",
                m.remediation_storm_for,
                "critical",
                "Remediation on {{ $labels.instance }} stopped in storm mode",
                "Too many disruptive runs on this node within the storm window: a cause bigger than one "
                "playbook (driver, host, shared storage). The engine acts on nothing until "
                "`gpuwarden reset`.",
            ),
            Alert(
                "RemediationPausedTooLong",
                f"time() - max by (job, instance, playbook) ({since}{s()}) > {paused_max_s:g}",
                m.remediation_paused_for,
                "warning",
                "Remediation on {{ $labels.instance }} paused ({{ $labels.playbook }}) for "
                "{{ $value | humanizeDuration }}",
                f"A pause older than {m.remediation_paused_max_hours:g} h: the node no longer heals itself "
                '(playbook "*": nothing at all). Resume it, or pause again with a reason that says why.',
            ),
            Alert(
                "GpuQuarantined",
                f"max by (job, instance, gpu, uuid) ({name('gpuwarden_remediation_gpu_quarantined')}{s()})"
                " == 1",
                m.gpu_quarantined_for,
                "warning",
                "GPU {{ $labels.gpu }} ({{ $labels.uuid }}) on {{ $labels.instance }} is quarantined",
                "The gpu_quarantine playbook took the GPU out of service; the worker serves without it. "
                "Inspect or replace the board, then `gpuwarden quarantine release`.",
            ),
        ),
    )


def agent(m: Mixin) -> Group:
    s = m.selector
    return Group(
        "gpuwarden-agent",
        (
            Alert(
                "GpuwardenAgentDown",
                # Three ways a node goes dark: the scrape fails; the agent's serverset znode vanished (it died
                # and its session expired, so discovery dropped the target); or no agent is left at all.
                f"up{s()} == 0"
                f" or (max_over_time(up{s()}[1h]) unless on (job, instance) up{s()})"
                f" or absent(up{s()})",
                m.agent_down_for,
                "critical",
                "gpuwarden agent {{ $labels.instance }} is down",
                "Prometheus cannot scrape the agent, or its target left service discovery: nothing watches "
                "or heals this node's GPUs.",
            ),
            Alert(
                "GpuwardenCollectorFailing",
                f"{name('gpuwarden_collector_success')}{s()} == 0",
                m.data_missing_for,
                "warning",
                "Collector {{ $labels.collector }} fails on {{ $labels.instance }}",
                f"The collector errored or timed out for {m.data_missing_for}; its series are dropped, so "
                "the alerts on them cannot fire.",
            ),
        ),
    )
