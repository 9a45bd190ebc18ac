"""The one place for selectors, thresholds and `for:` windows: dashboards, recording rules and alerts read it.

Each field carries a sentence of why (its `why` metadata); `gpuwarden rules build` and `gpuwarden dashboards
build` render from one `Mixin`, so a dashboard's red line and the alert that pages sit on the same number.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _why(value: Any, why: str) -> Any:
    return field(default=value, metadata={"why": why})


@dataclass(frozen=True)
class Mixin:
    job: str = _why(
        "gpuwarden",
        "the scrape job of the agents; every query selects it so another exporter's series never leak in",
    )
    runbook_url: str = _why(
        "https://gpuwarden.example/docs/runbooks",
        "where docs/runbooks/ is published; every alert links <this>/<AlertName>.md",
    )
    # Inference SLO: the scale_signal playbook scales up on the same number.
    latency_slo_seconds: float = _why(
        0.2, "the p99 latency SLO of the inference service (200 ms, the seed of the scale_signal playbook)"
    )
    latency_for: str = _why("5m", "a p99 above the SLO for 5 minutes is load, not one slow batch")
    error_ratio_max: float = _why(
        0.05, "5 % failed requests is a broken worker or model, not client noise (LiteLLM's rule uses 5 %)"
    )
    error_ratio_for: str = _why("5m", "five one-minute windows in a row rule out a single bad burst")
    # Fleet utilization: the scale-down line of the scale_signal playbook.
    fleet_utilization_min: float = _why(
        0.30, "below 30 % mean GPU utilization across the fleet, one node fewer still carries the load"
    )
    fleet_utilization_for: str = _why(
        "10m", "10 minutes of low load before scaling down; shorter would follow every lull in traffic"
    )
    gpu_memory_full_ratio: float = _why(
        0.95, "above 95 % of device memory a new request's KV cache or activations can hit CUDA OOM"
    )
    gpu_memory_for: str = _why("10m", "engines pre-allocate memory; only a sustained climb matters")
    thermal_margin_min_celsius: float = _why(
        5.0, "within 5 °C of T.Limit the GPU slows its clocks (NVSentinel warns at 2-3 °C; we warn earlier)"
    )
    xid_recent: str = _why(
        "15m",
        "an XID counts as current for 15 minutes: long enough for a page to be read, short enough to clear",
    )
    gpu_missing_for: str = _why("2m", "a GPU that stays lost for two collection cycles is off the bus")
    probe_failing_for: str = _why(
        "3m", "three minutes of failed canaries: past a worker restart, which takes under a minute"
    )
    quorum_lost_for: str = _why("1m", "one minute without quorum: every fleet budget and registration fails")
    quorum_at_risk_for: str = _why("5m", "a rolling restart takes one server out for a few minutes by design")
    agent_down_for: str = _why("3m", "three minutes covers an agent restart and a slow first GPU collection")
    remediation_exhausted_for: str = _why(
        "1m", "the engine gave up; one minute lets a manual resume race the page"
    )
    remediation_storm_for: str = _why(
        "1m", "storm mode latches until `gpuwarden reset`; the minute only lets a reset already typed win"
    )
    remediation_paused_max_hours: float = _why(
        4.0,
        "a pause outlives any planned work on one node (a rolling upgrade takes minutes); after half a "
        "shift it was forgotten and the node no longer heals itself",
    )
    remediation_paused_for: str = _why(
        "0m",
        "the pause's age is in the expression (its own timestamp, restart-proof), so no window is added",
    )
    gpu_quarantined_for: str = _why(
        "5m",
        "a quarantine is a decision, not a flapping reading; five minutes let the worker's restart without "
        "the GPU finish first",
    )
    remediation_window: str = _why(
        "1h", "runs and failures are summed over an hour: the attempt budget window of the engine"
    )
    data_missing_for: str = _why(
        "10m", "a series absent for 10 minutes is a collector that stopped, not a slow scrape"
    )

    def selector(self, *matchers: str) -> str:
        """`{job="gpuwarden",<matchers>}` for a series selector."""
        return "{" + ",".join([f'job="{self.job}"', *matchers]) + "}"

    def runbook(self, name: str) -> str:
        return f"{self.runbook_url.rstrip('/')}/{name}.md"


def reasons() -> dict[str, str]:
    """Field name → why, for the docs and the test that every setting says why."""
    return {f.name: str(f.metadata.get("why", "")) for f in fields(Mixin)}
