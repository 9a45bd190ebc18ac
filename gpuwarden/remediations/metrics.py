"""The engine's series, declared in one catalog; counters start from the audit log, so they survive
restarts the way the log does (a Prometheus `increase()` sees no reset after an agent restart)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.metrics_core import Metric

from gpuwarden.catalog import Families, MetricSpec
from gpuwarden.remediations.audit import RESULTS
from gpuwarden.remediations.rails import ALL, Rails

BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)

CATALOG = (
    MetricSpec(
        "gpuwarden_remediation_runs_total",
        "counter",
        "Remediation runs by playbook and result (" + ", ".join(RESULTS) + ").",
        labels=("playbook", "result"),
    ),
    MetricSpec(
        "gpuwarden_remediation_run_duration_seconds",
        "histogram",
        "Wall time of remediation runs that acted, from trigger to verified outcome.",
        labels=("playbook",),
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_remediation_exhausted",
        "gauge",
        "1 while the playbook's attempt budget is exhausted: it will not act until reset (escalate).",
        labels=("playbook",),
    ),
    MetricSpec(
        "gpuwarden_remediation_paused",
        "gauge",
        '1 while the playbook is paused by an operator (playbook="*": the whole engine).',
        labels=("playbook",),
    ),
    MetricSpec(
        "gpuwarden_remediation_paused_since_timestamp_seconds",
        "gauge",
        "Unix time of the pause request in force, only while paused: its age survives agent restarts, where "
        "an alert's `for:` on the paused gauge would start over.",
        labels=("playbook",),
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_remediation_fleet_leases_held",
        "gauge",
        "Fleet budget leases this node holds now (0 or 1: one lease per node).",
    ),
    MetricSpec("gpuwarden_remediation_queue_length", "gauge", "Requests waiting to run."),
    MetricSpec(
        "gpuwarden_remediation_storm",
        "gauge",
        "1 in storm mode: too many disruptive runs at once; the engine acts on nothing until reset.",
    ),
    MetricSpec(
        "gpuwarden_remediation_gpu_quarantined",
        "gauge",
        "1 for a GPU the gpu_quarantine playbook took out of service: inspect the hardware, then release it.",
        labels=("gpu", "uuid"),
    ),
    MetricSpec(
        "gpuwarden_scale_signal",
        "gauge",
        "1 for the direction of the fleet's current scale decision (up or down), emitted by the leader.",
        labels=("direction",),
    ),
    MetricSpec(
        "gpuwarden_remediation_requests_rejected_total",
        "counter",
        "Requests refused at submit: queue full, playbook busy or not enabled.",
    ),
)


class EngineMetrics:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.runs: Counter[tuple[str, str]] = Counter()
        self.buckets: dict[str, list[int]] = {}  # per playbook: count <= each bound, then the total
        self.sums: dict[str, float] = {}
        self.rejected = 0
        for record in records:
            self.observe(record)

    def observe(self, record: dict[str, Any]) -> None:
        if record["step"] == "repeats":  # refused requests of a held state, counted in one record
            self.runs[(record["playbook"], "skipped")] += int(record.get("count", 0))
            return
        if record["step"] != "outcome":
            return
        self.runs[(record["playbook"], record["result"])] += 1
        if record["result"] in ("succeeded", "failed"):
            value = float(record.get("duration_s", 0.0))
            counts = self.buckets.setdefault(record["playbook"], [0] * (len(BUCKETS) + 1))
            for i, bound in enumerate((*BUCKETS, float("inf"))):
                counts[i] += value <= bound
            self.sums[record["playbook"]] = self.sums.get(record["playbook"], 0.0) + value

    def families(
        self,
        rails: Rails,
        playbooks: list[str],
        queued: int,
        leases: int,
        extra: Iterable[tuple[str, float, Mapping[str, str]]] = (),
    ) -> Iterator[Metric]:
        fams = Families(CATALOG)
        histories = list(rails.histories.items())  # one copy: the engine's thread adds entries
        for playbook in playbooks:
            for result in RESULTS:
                runs = self.runs[(playbook, result)]
                fams.add("gpuwarden_remediation_runs_total", runs, playbook=playbook, result=result)
            counts = self.buckets.get(playbook, [0] * (len(BUCKETS) + 1))
            bounds = [str(float(b)) for b in BUCKETS] + ["+Inf"]
            fams.add_histogram(
                "gpuwarden_remediation_run_duration_seconds",
                [(bound, float(n)) for bound, n in zip(bounds, counts, strict=True)],
                self.sums.get(playbook, 0.0),
                playbook=playbook,
            )
            exhausted = any(h.exhausted for (p, _), h in histories if p == playbook)
            fams.add("gpuwarden_remediation_exhausted", exhausted, playbook=playbook)
            fams.add("gpuwarden_remediation_paused", playbook in rails.paused, playbook=playbook)
        fams.add("gpuwarden_remediation_paused", ALL in rails.paused, playbook=ALL)
        for name, since in sorted(rails.paused_at.items()):
            if name == ALL or name in playbooks:
                fams.add("gpuwarden_remediation_paused_since_timestamp_seconds", since, playbook=name)
        fams.add("gpuwarden_remediation_fleet_leases_held", leases)
        fams.add("gpuwarden_remediation_queue_length", queued)
        fams.add("gpuwarden_remediation_requests_rejected_total", self.rejected)
        fams.add("gpuwarden_remediation_storm", rails.storm is not None)
        for name, value, labels in extra:  # the playbooks' own series (quarantined GPUs, scale signal)
            fams.add(name, value, **labels)
        return iter(fams)
