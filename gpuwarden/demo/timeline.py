"""The drill's timeline: every event printed as it happens, kept for the table, the JSON and the picture.

An event belongs to the incident running when it was seen (`oom`, `hang`, `latency`, `zookeeper`, or
`setup`). Its `step` is a stable machine name (the CI test asserts them); its `role` says what it means for
the table: `inject` starts an incident, the first `detect` and `act` after it and its `recover` give the
measured times.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

ROLES = ("inject", "detect", "act", "held", "recover", "info")


@dataclass(frozen=True)
class Event:
    t: float  # seconds since the drill started
    at: str  # wall clock, ISO 8601 UTC
    incident: str
    step: str
    role: str
    source: str  # who saw it: demo, agent, remediation, prometheus, alertmanager, inbox, scale
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Timeline:
    out: TextIO = sys.stdout
    started: float = field(default_factory=time.monotonic)
    incident: str = "setup"
    events: list[Event] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)  # key series, one dict per second
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return round(time.monotonic() - self.started, 2)

    def add(self, step: str, text: str, *, role: str = "info", source: str = "demo", **data: Any) -> Event:
        assert role in ROLES, role
        with self._lock:
            event = Event(
                self.now(), datetime.now(UTC).isoformat(timespec="milliseconds"), self.incident, step, role,
                source, text, data,
            )  # fmt: skip
            self.events.append(event)
            print(f"  {event.t:7.1f}s  {source:<12} {text}", file=self.out, flush=True)
        return event

    def section(self, incident: str, title: str) -> None:
        with self._lock:
            self.incident = incident
            print(f"\n== {title}", file=self.out, flush=True)

    def sample(self, values: dict[str, Any]) -> None:
        with self._lock:
            self.samples.append({"t": self.now(), **values})

    def has(self, incident: str, step: str) -> bool:
        with self._lock:
            return any(e.incident == incident and e.step == step for e in self.events)

    def first(self, incident: str, *, role: str | None = None, step: str | None = None) -> Event | None:
        with self._lock:
            for e in self.events:
                if (
                    e.incident == incident
                    and (role is None or e.role == role)
                    and (step is None or e.step == step)
                ):
                    return e
        return None

    def write_json(self, path: Path, meta: dict[str, Any], table: list[dict[str, Any]]) -> None:
        with self._lock:
            doc = {
                **meta,
                "events": [asdict(e) for e in self.events],
                "table": table,
                "samples": self.samples,
            }
        path.write_text(json.dumps(doc, indent=1) + "\n")
