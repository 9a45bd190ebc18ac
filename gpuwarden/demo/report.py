"""The end of the drill: the table of detection and recovery times measured in this run, and the picture.

Times are seconds after the incident's fault was injected: `detected` is the first sign of it the agent,
Prometheus or the remediation engine showed, `acted` is the first remediation step taken, `recovered` is
the moment the demo saw the node whole again (canary passing, alert resolved, quorum back).
"""

from __future__ import annotations

from typing import Any

from gpuwarden.demo.timeline import Event, Timeline

# Milestones printed under the table: (incident, step, label).
MILESTONES = (
    ("oom", "health.engine.probe.DEGRADED", "agent: canary fails (HTTP 500, CUDA OOM)"),
    ("oom", "crash", "worker dies of it (exit 134)"),
    ("oom", "memory_fraction.trigger", "agent, its supervisor, sees the exit"),
    ("oom", "memory_fraction.succeeded", "memory fraction lowered, worker restarted and ready"),
    ("hang", "health.engine.probe.DEGRADED", "agent: canary times out"),
    ("hang", "health.engine.probe.UNHEALTHY", "agent: engine.probe UNHEALTHY"),
    ("hang", "worker_restart.trigger", "held 3s (for_s): restart asked"),
    ("hang", "worker_restart.succeeded", "worker restarted and ready"),
    ("latency", "health.inference.latency.DEGRADED", "agent sees p99 over the SLO"),
    ("latency", "prometheus.InferenceP99LatencyHigh.pending", "Prometheus: alert pending"),
    ("latency", "prometheus.InferenceP99LatencyHigh.firing", "Prometheus: alert firing"),
    ("latency", "alertmanager.InferenceP99LatencyHigh", "Alertmanager routes it"),
    ("latency", "scale.up", "scale-up signal written"),
    ("latency", "prometheus.InferenceP99LatencyHigh.resolved", "alert resolved"),
    ("zookeeper", "health.zookeeper.quorum.DEGRADED", "agent: quorum DEGRADED"),
    ("zookeeper", "kill_second", "second server killed"),
    ("zookeeper", "health.zookeeper.quorum.UNHEALTHY", "agent: NO_QUORUM"),
    ("zookeeper", "worker_restart.denied", "restart held back by the fleet budget"),
    ("zookeeper", "inbox.page.ZooKeeperQuorumLost.firing", "on-call paged: ZooKeeperQuorumLost"),
    ("zookeeper", "restore", "servers restarted"),
    ("zookeeper", "health.zookeeper.quorum.HEALTHY", "agent: quorum OK"),
    ("zookeeper", "worker_restart.succeeded", "held restart done"),
)


def table(timeline: Timeline, incidents: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for incident in incidents:
        inject = timeline.first(incident, role="inject")
        if inject is None:
            continue

        def after(e: Event | None, start: Event = inject) -> float | None:
            return None if e is None else round(e.t - start.t, 1)

        detect = timeline.first(incident, role="detect")
        act = timeline.first(incident, role="act")
        recover = timeline.first(incident, step="recovered")
        rows.append(
            {
                "incident": incident,
                "injected_at_s": inject.t,
                "fault": inject.text,
                "detected_after_s": after(detect),
                "detected_by": label(detect) if detect else None,
                "acted_after_s": after(act),
                "acted": act.text if act else None,
                "recovered_after_s": after(recover),
                "held_back": sum(1 for e in timeline.events if e.incident == incident and e.role == "held"),
                "milestones": sorted(
                    (
                        {"step": step, "label": label, "after_s": after(timeline.first(incident, step=step))}
                        for inc, step, label in MILESTONES
                        if inc == incident and timeline.first(incident, step=step) is not None
                    ),
                    key=lambda m: float(m["after_s"] or 0.0),
                ),
            }
        )
    return rows


def label(e: Event) -> str:
    """A short name for the first sign of an incident: `agent: engine.probe DEGRADED`."""
    if e.step.startswith("health."):
        return f"agent: {e.data.get('component')} {e.data.get('state')}"
    return e.text if len(e.text) <= 60 else e.text[:57] + "..."


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def render(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'incident':<10} {'injected':>9} {'detected':>9} {'acted':>7} {'recovered':>10} {'held':>5}"
        "  first sign"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['incident']:<10} {r['injected_at_s']:>8.1f}s {_s(r['detected_after_s']):>9} "
            f"{_s(r['acted_after_s']):>7} {_s(r['recovered_after_s']):>10} {r['held_back']:>5}  "
            f"{r['detected_by'] or '-'}"
        )
    for r in rows:
        for m in r["milestones"]:
            lines.append(f"  {r['incident']:<10} +{_s(m['after_s']):>7}  {m['label']}")
    return "\n".join(lines)
