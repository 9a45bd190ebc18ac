"""A sliding window of scrapes, counter increases that survive resets, and histogram quantiles.

Both follow Prometheus so that the agent's numbers agree with the dashboards' PromQL:
- `increase()` is `increase()` without the extrapolation: a counter that goes down has been reset (the
  server restarted), so the sample after the drop counts from zero (promql/functions.go, `extrapolatedRate`
  and its `resultValue += prevValue` on a decrease). A restart never yields a negative rate.
- `histogram_quantile()` is promql/quantile.go's `bucketQuantile`: linear interpolation inside the bucket
  that holds the rank, the lower bound of the first bucket is 0, a rank in the +Inf bucket answers the
  largest finite bound, and non-monotonic buckets (from resets racing a scrape) are made monotonic first.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from gpuwarden.collectors.inference.exposition import LabelKey, Series


@dataclass(frozen=True)
class Observation:
    """The mapped signals of one scrape at monotonic time `t`."""

    t: float
    counters: dict[str, Series] = field(default_factory=dict)  # signal → series (cumulative)
    gauges: dict[str, float] = field(default_factory=dict)  # signal → current value
    quantiles: dict[float, float] = field(default_factory=dict)  # summary quantile → seconds


def series_increase(values: Iterable[float]) -> float:
    """Increase of one counter over consecutive samples; a decrease means a reset from zero."""
    total, prev = 0.0, None
    for value in values:
        if prev is not None:
            total += value - prev if value >= prev else value
        prev = value
    return total


def resets(values: Iterable[float]) -> int:
    prev, count = None, 0
    for value in values:
        if prev is not None and value < prev:
            count += 1
        prev = value
    return count


class Window:
    def __init__(self, span: float) -> None:
        self.span = span
        self._obs: deque[Observation] = deque()

    def add(self, obs: Observation) -> None:
        self._obs.append(obs)
        while self._obs and self._obs[0].t < obs.t - self.span:
            self._obs.popleft()

    def __len__(self) -> int:
        return len(self._obs)

    @property
    def latest(self) -> Observation | None:
        return self._obs[-1] if self._obs else None

    @property
    def duration(self) -> float:
        return self._obs[-1].t - self._obs[0].t if len(self._obs) > 1 else 0.0

    def _per_series(self, signal: str) -> dict[LabelKey, list[float]]:
        """Values per series; a series missing from the scrapes before its first sample counts as 0.

        Clients create a labelled counter on its first increment (the instrumentator's status="5xx" on
        the first server error), so the series appears already at 1: taking that first sample as the
        baseline, as Prometheus does, would lose exactly the first error.
        """
        observed = [obs.counters[signal] for obs in self._obs if signal in obs.counters]
        keys = {key for series in observed for key in series}
        per: dict[LabelKey, list[float]] = {}
        for key in keys:
            values: list[float] = []
            for series in observed:
                value = series.get(key)
                if value is not None:
                    values.append(value)
                elif not values:
                    values.append(0.0)  # not created yet; a series that vanished later keeps its last value
            per[key] = values
        return per

    def increase(self, signal: str) -> Series | None:
        """Per-series increase of `signal` over the window; None without two scrapes or the signal."""
        if len(self._obs) < 2 or not any(signal in obs.counters for obs in self._obs):
            return None
        return {key: series_increase(values) for key, values in self._per_series(signal).items()}

    def total_increase(self, signal: str) -> float | None:
        inc = self.increase(signal)
        return None if inc is None else sum(inc.values())

    def last_resets(self, signal: str) -> int:
        """Series of `signal` that went down between the last two scrapes."""
        if len(self._obs) < 2:
            return 0
        before, after = self._obs[-2].counters.get(signal, {}), self._obs[-1].counters.get(signal, {})
        return sum(1 for key, value in after.items() if key in before and value < before[key])


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """Prometheus' bucketQuantile over (upper bound, cumulative count) pairs; NaN when undefined."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    bounds = [b for b, _ in ordered]
    counts = [c for _, c in ordered]
    for i in range(1, len(counts)):  # ensureMonotonic
        counts[i] = max(counts[i], counts[i - 1])
    observations = counts[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(bounds) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start, count, rank = bounds[b - 1], count - counts[b - 1], rank - counts[b - 1]
    if count == 0:  # only for q == 0 with an empty first bucket (Go would give 0/0 = NaN)
        return start
    return start + (end - start) * (rank / count)


def bucket_increase(inc: Series) -> list[tuple[float, float]]:
    """`sum by (le) (increase(x_bucket))`: merge per-series bucket increases into one histogram."""
    merged: dict[float, float] = {}
    for key, value in inc.items():
        le = dict(key).get("le")
        if le is None:
            continue
        bound = float(le)
        merged[bound] = merged.get(bound, 0.0) + value
    return sorted(merged.items())
