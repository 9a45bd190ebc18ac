"""Series the dashboards read that no code exports yet: the `scale_signal` playbook (issue "remediation
engine") adopts this catalog, moving it next to its code, so the name stays one contract. The engine's own
series are in gpuwarden/remediations/metrics.py."""

from __future__ import annotations

from gpuwarden.catalog import MetricSpec

CATALOG = (
    MetricSpec(
        "gpuwarden_scale_signal",
        "gauge",
        "1 for the direction (up, down, none) of the fleet's last scale decision (the leader exports it).",
        labels=("direction",),
    ),
)
