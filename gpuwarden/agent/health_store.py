"""One store for every health result; `/health` and `gpuwarden_health_state` both read it.

Each collector's cycle replaces what it reported before. The store keeps `since` (when the state began)
across cycles while a component's state holds, and turns every change into a `Transition`: logged as one
line (one JSON object with `--log-format json`) and handed to subscribers, such as the remediation engine.

A component seen for the first time is a transition (from None) only when it is not HEALTHY: an agent that
starts on a healthy node says nothing, one that starts on a broken node says what is broken. A component
that a collector stops reporting (a peer removed from the config, a disabled collector) leaves quietly.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable

from gpuwarden.health import HealthResult, State, Transition, worst

Subscriber = Callable[[Transition], None]


class HealthStore:
    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logging.getLogger("gpuwarden.health")
        self._lock = threading.Lock()  # guards the results and the subscriber list
        # Held from computing transitions until every subscriber has them, so that subscribers see each
        # component's transitions in the order they happened even when two collectors finish at once.
        self._deliver = threading.RLock()
        self._by_collector: dict[str, dict[str, HealthResult]] = {}
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback` with every transition from now on; returns the function that stops it.

        Callbacks run on the collector's thread and must be quick: queue the work, do not act inline."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def replace(self, collector: str, results: Iterable[HealthResult]) -> None:
        """A collector's latest cycle replaces everything it reported before."""
        with self._deliver:
            with self._lock:
                transitions = self._swap(collector, list(results))
            self._emit(transitions)

    def mark_unknown(self, collector: str, reason: str) -> None:
        """The collector failed: what it said last is no longer known to be true."""
        with self._deliver:
            with self._lock:
                before = self._by_collector.get(collector)
                if before:
                    unknown = [
                        HealthResult(r.component, State.UNKNOWN, reason, labels=r.labels)
                        for r in before.values()
                    ]
                else:
                    unknown = [HealthResult(collector, State.UNKNOWN, reason)]
                transitions = self._swap(collector, unknown)
            self._emit(transitions)

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

    # -- transitions ----------------------------------------------------------------------------------
    def _swap(self, collector: str, results: list[HealthResult]) -> list[Transition]:
        before = self._by_collector.get(collector, {})
        now: dict[str, HealthResult] = {}
        transitions = []
        for result in results:
            previous = before.get(result.component)
            same = previous is not None and previous.state == result.state
            since = result.since  # set by a collector that knows better (an event older than this cycle)
            if since is None:
                since = previous.since if same and previous is not None else result.timestamp
            now[result.component] = dataclasses.replace(result, since=since)
            if not same and (previous is not None or result.state != State.HEALTHY):
                transitions.append(
                    Transition(
                        component=result.component,
                        labels=result.labels,
                        old=previous.state if previous else None,
                        new=result.state,
                        reason=result.reason,
                        action=result.suggested_action,
                        at=result.timestamp,
                    )
                )
        self._by_collector[collector] = now
        return transitions

    def _emit(self, transitions: list[Transition]) -> None:
        if not transitions:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for t in transitions:
            self._log(t)
            for callback in subscribers:
                try:
                    callback(t)
                except Exception:  # one broken subscriber must not stop the others or the collector
                    self.log.exception("health subscriber %r failed on %s", callback, t.component)

    def _log(self, t: Transition) -> None:
        level = logging.INFO if t.new == State.HEALTHY else logging.WARNING
        labels = "".join(f" {k}={v}" for k, v in sorted(t.labels.items()))
        self.log.log(
            level,
            "health %s: %s -> %s, action %s%s: %s",
            t.component,
            t.old or "none",
            t.new,
            t.action,
            labels,
            " ".join(t.reason.split()),  # one line, whatever the reason holds
            extra={"fields": {"event": "health_transition", **t.to_json()}},
        )
