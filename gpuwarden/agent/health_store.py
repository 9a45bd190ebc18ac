"""One store for every health result; `/health` and `gpuwarden_health_state` both read it."""

from __future__ import annotations

import threading

from gpuwarden.health import HealthResult, State, worst


class HealthStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_collector: dict[str, dict[str, HealthResult]] = {}

    def replace(self, collector: str, results: list[HealthResult]) -> None:
        """A collector's latest cycle replaces everything it reported before."""
        with self._lock:
            self._by_collector[collector] = {r.component: r for r in results}

    def mark_unknown(self, collector: str, reason: str) -> None:
        """The collector failed: what it said last is no longer known to be true."""
        with self._lock:
            components = list(self._by_collector.get(collector) or [collector])
            self._by_collector[collector] = {c: HealthResult(c, State.UNKNOWN, reason) for c in components}

    def drop(self, collector: str) -> None:
        with self._lock:
            self._by_collector.pop(collector, None)

    def results(self) -> list[HealthResult]:
        with self._lock:
            out = [r for results in self._by_collector.values() for r in results.values()]
        return sorted(out, key=lambda r: r.component)

    def to_json(self) -> dict[str, object]:
        results = self.results()
        return {
            "status": str(worst([r.state for r in results])),
            "components": [r.to_json() for r in results],
        }
