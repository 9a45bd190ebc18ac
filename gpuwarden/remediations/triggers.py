"""Turn health transitions and alerts into `Request`s: a state held for a duration, an allow-listed alert.

Health: the store calls `on_transition` on its own thread, so it only records (a dict update); `due()`,
called by the engine's tick, returns the requests whose bad state has now been held for `for_s`. A
condition that stays bad fires again every `for_s` (the rails decide whether to act). Each entry into a
bad state is remembered for the flap filter.

Alerts: only `firing` alerts start anything (robusta#345 killed a healthy pod on a RESOLVED alert); an
HA Alertmanager pair delivers the same alert twice, so (fingerprint, startsAt, status) is deduplicated.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gpuwarden.health import State
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.settings import AlertTrigger, HealthTrigger, PlaybookSettings

DEDUPE_TTL_S = 7200.0  # Robusta keeps alert keys 2 h; Alertmanager repeats every 4 h by default


class TransitionLike(Protocol):
    """The health stream's `Transition` (gpuwarden.agent.health_store), as far as triggers read it."""

    @property
    def component(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def new(self) -> State: ...

    @property
    def reason(self) -> str: ...


@dataclass(frozen=True)
class Alert:
    """One alert of an Alertmanager webhook payload (`alerts[]`), as the API hands it over."""

    alertname: str
    status: str  # "firing" or "resolved"
    fingerprint: str
    starts_at: str
    labels: Mapping[str, str] = field(default_factory=dict)
    receiver: str = ""


@dataclass
class _Held:
    since: float
    last_fired: float | None
    labels: Mapping[str, str]
    reason: str


class HealthTriggers:
    def __init__(self, playbooks: Mapping[str, PlaybookSettings]) -> None:
        self.playbooks = playbooks
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], _Held] = {}  # (playbook, component) → held bad state
        self._entries: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def _matching(self, component: str, state: State) -> list[tuple[str, HealthTrigger, bool]]:
        out = []
        for name, settings in self.playbooks.items():
            for trigger in settings.triggers:
                if isinstance(trigger, HealthTrigger) and fnmatch.fnmatchcase(component, trigger.component):
                    out.append((name, trigger, state in trigger.states))
        return out

    def on_transition(self, t: TransitionLike, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for name, _, bad in self._matching(t.component, t.new):
                key = (name, t.component)
                if not bad:
                    self._held.pop(key, None)
                elif key not in self._held:
                    self._held[key] = _Held(now, None, dict(t.labels), t.reason)
                    self._entries[key].append(now)

    def holding(self, playbook: str, component: str) -> bool:
        """Whether `component` is still in a bad state that triggers `playbook`."""
        with self._lock:
            return (playbook, component) in self._held

    def due(self, now: float | None = None) -> list[Request]:
        now = time.monotonic() if now is None else now
        requests = []
        with self._lock:
            for (name, component), held in self._held.items():
                settings = self.playbooks[name]
                trigger = next(
                    t for t in settings.triggers
                    if isinstance(t, HealthTrigger) and fnmatch.fnmatchcase(component, t.component)
                )  # fmt: skip
                start = held.since if held.last_fired is None else held.last_fired
                if now - start < trigger.for_s:
                    continue
                held.last_fired = now
                entries = self._entries[(name, component)]
                while entries and entries[0] < now - settings.rails.flap_window_s:
                    entries.popleft()
                requests.append(
                    Request(
                        playbook=name, source="health", actor=f"health:{component}",
                        reason=f"{component} bad for {now - held.since:.0f}s: {held.reason}",
                        component=component, labels=held.labels, flaps=len(entries),
                    )
                )  # fmt: skip
        return requests


class AlertTriggers:
    def __init__(self, playbooks: Mapping[str, PlaybookSettings]) -> None:
        self.playbooks = playbooks
        self._seen: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    def forget(self, alert: Alert) -> None:
        """The alert could not be queued: a redelivery (Alertmanager retries) must not count as duplicate."""
        with self._lock:
            self._seen.pop((alert.fingerprint, alert.starts_at, alert.status), None)

    def requests(self, alert: Alert, now: float | None = None) -> tuple[list[Request], str]:
        """The requests an alert starts, or none and why (resolved, duplicate, not allow-listed)."""
        now = time.monotonic() if now is None else now
        if alert.status != "firing":
            return [], f"alert {alert.alertname} is {alert.status}: only firing alerts start playbooks"
        key = (alert.fingerprint, alert.starts_at, alert.status)
        with self._lock:
            self._seen = {k: t for k, t in self._seen.items() if now - t < DEDUPE_TTL_S}
            if key in self._seen:
                return [], f"duplicate delivery of alert {alert.alertname} ({alert.fingerprint})"
            self._seen[key] = now
        names = [
            name for name, s in self.playbooks.items()
            if any(isinstance(t, AlertTrigger) and t.alertname == alert.alertname for t in s.triggers)
        ]  # fmt: skip
        if not names:
            return [], f"alert {alert.alertname} is not allow-listed for any playbook"
        actor = f"alertmanager:{alert.receiver or 'webhook'}"
        return [
            Request(
                playbook=name, source="alert", actor=actor,
                reason=f"alert {alert.alertname} firing since {alert.starts_at}",
                labels={**alert.labels, "alertname": alert.alertname},
            )
            for name in names
        ], "queued"  # fmt: skip
