"""Monotonic counters and per-interval rates from raw kernel counters that can wrap or reset.

A raw counter that goes down has either wrapped at its width or been reset (driver reload, interface
re-created, `perfquery -R`). We keep our own running total per series so the exported counter never
decreases and a rate is never negative: a wrap adds the distance to the width plus the new value, a reset
adds the new value (what Prometheus' own `rate()` assumes for a reset).
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH_32 = 2**32


@dataclass
class _Series:
    raw: int
    total: int
    delta: int | None = None  # increase over the last interval; None on the first sample


class CounterTracker:
    """Running totals keyed by series; forgets series that were not seen in the latest cycle."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, ...], _Series] = {}
        self._seen: set[tuple[str, ...]] = set()

    def update(self, key: tuple[str, ...], raw: int, wraps_at: int | None = None) -> int:
        """Record `raw` for `key` and return the monotonic total.

        `wraps_at` is the counter's modulus when it is known to wrap (2**32 for IB PortCounters); a decrease
        of such a counter whose last value fit the width is a wrap, any other decrease is a reset.
        """
        self._seen.add(key)
        s = self._series.get(key)
        if s is None:
            self._series[key] = _Series(raw=raw, total=raw)
            return raw
        if raw >= s.raw:
            delta = raw - s.raw
        elif wraps_at is not None and s.raw < wraps_at:
            delta = wraps_at - s.raw + raw
        else:
            delta = raw
        s.raw, s.total, s.delta = raw, s.total + delta, delta
        return s.total

    def delta(self, key: tuple[str, ...]) -> int | None:
        s = self._series.get(key)
        return None if s is None else s.delta

    def end_cycle(self) -> None:
        """Drop series that disappeared (an interface removed) so memory stays bounded."""
        for key in set(self._series) - self._seen:
            del self._series[key]
        self._seen = set()


def utilization(delta_bytes: int | None, seconds: float | None, capacity_bps: float | None) -> float | None:
    """Share of the link's capacity used over the interval, or None when any input is unknown."""
    if delta_bytes is None or not seconds or seconds <= 0 or not capacity_bps:
        return None
    return delta_bytes * 8 / seconds / capacity_bps


def error_ratio(delta_errors: int | None, delta_packets: int | None) -> float | None:
    """Errored packets over all packets in the interval; 0 for an idle interval, None on the first one."""
    if delta_errors is None or delta_packets is None:
        return None
    total = delta_errors + delta_packets
    return delta_errors / total if total else 0.0
