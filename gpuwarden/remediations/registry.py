"""The playbook registry: `@register_playbook("worker_restart", WorkerRestartSettings)` on a playbook class.

`gpuwarden.remediations.playbooks` imports every playbook module explicitly (like `gpuwarden.collectors`),
and the config's `remediation.playbooks` section is built from this registry. A playbook:

- `plan(request)` is pure: it returns the steps it would take, which is exactly what a dry run shows and
  exactly what the engine executes;
- `still_needed(request)` re-checks the condition right before acting (a recovered target is left alone);
- `verify()` re-runs the check after acting;
- `samples()` (optional) returns series of the engine's catalog the playbook owns (metrics.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from gpuwarden.remediations.request import Request
from gpuwarden.remediations.settings import PlaybookSettings
from gpuwarden.remediations.targets import Target

if TYPE_CHECKING:  # kazoo loads with the fleet, not with the config schema
    from gpuwarden.fleet.client import FleetClient


@dataclass(frozen=True)
class Step:
    """One action of a plan. `disruptive` steps take capacity away and need the fleet lease intact;
    the others (start, wait for ready) restore it and always run once the plan began."""

    name: str
    detail: str
    run: Callable[[], object] = field(compare=False, repr=False)
    disruptive: bool = False

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "detail": self.detail, "disruptive": self.disruptive}


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...] = ()
    refusal: str | None = None  # the playbook cannot help (at its floor, last GPU): stop and escalate

    @property
    def disruptive(self) -> bool:
        return any(s.disruptive for s in self.steps)

    def to_json(self) -> dict[str, object]:
        return {"steps": [s.to_json() for s in self.steps], "refusal": self.refusal}


@dataclass(frozen=True)
class Check:
    ok: bool
    reason: str


class FleetView(Protocol):
    """What fleet-level playbooks read of the agent's fleet membership (gpuwarden.fleet.FleetMember)."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def client(self) -> FleetClient: ...


Sample = tuple[str, float, Mapping[str, str]]  # (series of metrics.CATALOG, value, labels)


@dataclass(frozen=True)
class PlaybookContext:
    target: Target
    health: Callable[[str], str | None]  # current state of a component, None when unknown to the store
    fleet: Callable[[], FleetView | None] = lambda: None  # None: no fleet, this node decides alone
    inventory: Callable[[], Mapping[str, str]] = dict  # this node's GPUs: index → UUID


class Playbook(Protocol):
    name: ClassVar[str]

    def still_needed(self, request: Request) -> Check: ...

    def plan(self, request: Request) -> Plan: ...

    def verify(self) -> Check: ...

    def evidence(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class PlaybookSpec:
    name: str
    settings: type[PlaybookSettings]
    factory: Callable[[Any, PlaybookContext], Playbook]


PLAYBOOKS: dict[str, PlaybookSpec] = {}


def register_playbook(name: str, settings: type[PlaybookSettings]) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        if name in PLAYBOOKS:
            raise ValueError(f"playbook {name} registered twice")
        cls.name = name  # type: ignore[attr-defined]
        PLAYBOOKS[name] = PlaybookSpec(name=name, settings=settings, factory=cls)
        return cls

    return decorate
