"""Series the remediation engine will export (issue "remediation engine"): the dashboards and alerts read
them from here until the engine exists; the engine adopts this catalog (moves it next to its code) so the
names stay one contract.
"""

from __future__ import annotations

from gpuwarden.catalog import MetricSpec

CATALOG = (
    MetricSpec(
        "gpuwarden_remediation_runs_total",
        "counter",
        "Finished remediation runs by playbook and result (succeeded, failed, dry_run, skipped, "
        "interrupted).",
        labels=("playbook", "result"),
    ),
    MetricSpec(
        "gpuwarden_remediation_run_duration_seconds",
        "histogram",
        "Wall time of a remediation run, trigger to verified outcome.",
        labels=("playbook",),
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_remediation_runs_in_progress",
        "gauge",
        "Remediation runs executing now.",
        labels=("playbook",),
    ),
    MetricSpec(
        "gpuwarden_remediation_exhausted",
        "gauge",
        "1 when the playbook spent its attempt budget and stopped: a human must look.",
        labels=("playbook",),
    ),
    MetricSpec(
        "gpuwarden_remediation_paused",
        "gauge",
        '1 when remediation is paused (playbook="*" for the whole agent).',
        labels=("playbook",),
    ),
    MetricSpec(
        "gpuwarden_fleet_budget_leases_held",
        "gauge",
        "Fleet budget leases this agent holds now (0 or 1: one lease per node).",
    ),
    MetricSpec(
        "gpuwarden_scale_signal",
        "gauge",
        "1 for the direction (up, down, none) of the fleet's last scale decision (the leader exports it).",
        labels=("direction",),
    ),
)
