"""The playbook registry: `@register_playbook("worker_restart", WorkerRestartSettings)` on a playbook class.

`gpuwarden.remediations.playbooks` imports every playbook module explicitly (like `gpuwarden.collectors`),
and the config's `remediation.playbooks` section is built from this registry. A playbook:

- `plan(request)` is pure: it returns the steps it would take, which is exactly what a dry run shows and
  exactly what the engine executes;
- `still_needed(request)` re-checks the condition right before acting (a recovered target is left alone);
- `verify()` re-runs the check after acting;
- `samples()` (optional) returns series of the engine's catalog the playbook owns (metrics.py);
- `standing(settings)` (optional, static) returns the series of what the playbook left on the node (the
  quarantined GPUs), read from its settings alone: `Standing` exports them whether the playbook, or the
  whole engine, is enabled or not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from gpuwarden.remediations.request import Request
from gpuwarden.remediations.settings import PlaybookSettings
from gpuwarden.remediations.targets import Target

if TYPE_CHECKING:  # kazoo loads with the fleet, not with the config schema
    from prometheus_client.metrics_core import Metric

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
    standing: Callable[[Any], list[Sample]] | None = None


PLAYBOOKS: dict[str, PlaybookSpec] = {}


def register_playbook(name: str, settings: type[PlaybookSettings]) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        if name in PLAYBOOKS:
            raise ValueError(f"playbook {name} registered twice")
        cls.name = name  # type: ignore[attr-defined]
        PLAYBOOKS[name] = PlaybookSpec(name, settings, cls, getattr(cls, "standing", None))
        return cls

    return decorate


class Standing:
    """What the playbooks left on the node, as series. Turning a playbook or the engine off does not undo
    what it did (a quarantined GPU stays out of the worker until on-call releases it), so its series, and
    the alert on them, must not go quiet: the engine exports these beside its own, and the agent exports
    them alone while `remediation.enabled` is false."""

    def __init__(self, playbook: Callable[[str], PlaybookSettings]) -> None:
        self.playbook = playbook  # RemediationSettings.playbook: every playbook's settings, enabled or not

    def samples(self) -> list[Sample]:
        return [
            sample
            for name, spec in sorted(PLAYBOOKS.items())
            if spec.standing is not None
            for sample in spec.standing(self.playbook(name))
        ]

    def collect(self) -> Iterator[Metric]:
        samples = self.samples()
        if not samples:
            return iter(())
        from gpuwarden.catalog import Families
        from gpuwarden.remediations.metrics import CATALOG  # the engine's series: loaded once one stands

        families = Families(CATALOG)
        for name, value, labels in samples:
            families.add(name, value, **labels)
        return iter(families)
