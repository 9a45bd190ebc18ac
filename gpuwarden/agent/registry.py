"""The collector registry: `@register("node", NodeSettings)` on a collector class.

`gpuwarden.collectors` imports every collector module explicitly, so the list stays greppable (telegraf's
`all/`, gpud's `all.go`). The config's `collectors` section is built from this registry (each collector
owns its settings model); this module never imports the config. A collector gets its own settings and a
`CollectorContext` of explicit dependencies, never the whole config: a rule that needs two sections is a
validator on `AgentConfig`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client.core import Metric
from pydantic import Field

from gpuwarden.config_base import StrictModel
from gpuwarden.health import HealthResult
from gpuwarden.paths import Paths


class CollectorSettings(StrictModel):
    enabled: bool = Field(True, description="run this collector")
    # Bounded so a typo cannot schedule a job beyond what APScheduler's timedelta or a deadline can hold.
    interval: float = Field(15.0, gt=0, le=86400, description="seconds between two collections")
    timeout: float = Field(10.0, gt=0, le=3600, description="deadline for one collection, in seconds")


Item = Metric | HealthResult


class Collector(Protocol):
    def collect(self) -> Iterable[Item]:
        """Yield metric families and health results for one cycle. May raise or hang: the runner copes."""
        ...

    def close(self) -> None:
        """Release resources (NVML handles, sockets, threads). Called on shutdown and on reload."""
        ...


@dataclass(frozen=True)
class CollectorContext:
    """What a collector may use besides its own settings, each named. Constructors do no slow I/O."""

    paths: Paths
    log: logging.Logger
    # The voting members of `fleet.hosts`: the zookeeper collector's servers when its own list is empty.
    fleet_hosts: tuple[str, ...] = ()
    # The node collector's embedded doctor exporter, given its NVML deadline; None when
    # `doctor.export_metrics` is off.
    doctor: Callable[[float], Collector] | None = None


@dataclass(frozen=True)
class CollectorSpec:
    name: str
    settings: type[CollectorSettings]
    factory: Callable[[Any, CollectorContext], Collector]


REGISTRY: dict[str, CollectorSpec] = {}


def register(name: str, settings: type[CollectorSettings]) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        if name in REGISTRY:
            raise ValueError(f"collector {name} registered twice")
        REGISTRY[name] = CollectorSpec(name=name, settings=settings, factory=cls)
        return cls

    return decorate


def build(name: str, settings: CollectorSettings, ctx: CollectorContext) -> Collector:
    """The collector `name` with its own settings and its dependencies."""
    return REGISTRY[name].factory(settings, ctx)
