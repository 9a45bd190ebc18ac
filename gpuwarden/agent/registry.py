"""The collector registry: `@register("node", NodeSettings)` on a collector class.

`gpuwarden.collectors` declares every collector explicitly, so the list stays greppable (telegraf's
`all/`, gpud's `all.go`). The config schema's `collectors` section is built from this registry: each
collector owns its settings model, and the one YAML file still validates as a whole. A declared
collector's implementation is imported when it is first built, not when the config is read: a disabled
collector costs its settings model only, not its libraries (requests, kazoo, onnxruntime...), which
bench/footprint.py measures in the agent's resident memory. This module never imports the config: a
collector gets its own settings and a `CollectorContext` of explicit dependencies, never the whole config;
a rule that needs two sections is a validator on `AgentConfig`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client.metrics_core import Metric
from pydantic import Field

from gpuwarden.config_base import StrictModel
from gpuwarden.health import HealthResult
from gpuwarden.paths import Paths


class CollectorSettings(StrictModel):
    enabled: bool = Field(True, description="run this collector")
    # Bounded so a typo cannot schedule a job beyond what a timer or a deadline can hold.
    interval: float = Field(15.0, gt=0, le=86400, description="seconds between two collections")
    timeout: float = Field(10.0, gt=0, le=3600, description="deadline for one collection, in seconds")


@dataclass(frozen=True)
class Expectations:
    """What other sections say this node should have, for the doctor to check (one key per fact)."""

    interfaces: tuple[str, ...] = ()  # collectors.network.expected_interfaces
    ib_ports: int = 0  # collectors.network.infiniband_expected_active_ports
    gpus: int = 0  # collectors.gpu.expected_gpus (0: no check)
    volumes: tuple[tuple[str, int], ...] = ()  # collectors.node.disk_paths with min_free: (path, bytes)


@dataclass(frozen=True)
class CollectorContext:
    """What a collector may use besides its own settings, each named. Constructors do no slow I/O."""

    paths: Paths
    log: logging.Logger
    # The voting members of `fleet.hosts`: the zookeeper collector's servers when its own list is empty.
    fleet_hosts: tuple[str, ...] = ()
    expected: Expectations = field(default_factory=Expectations)


@dataclass(frozen=True)
class CollectionFailed:
    """Yielded by a collector whose source answered nonsense or nothing (an unreachable or broken target):
    `gpuwarden_collector_success` is 0 with this reason, yet the series and health results it yields with it
    (its own `*_up 0`, an escalating health verdict) are kept, unlike a collector that raises."""

    reason: str


Item = Metric | HealthResult | CollectionFailed


class Collector(Protocol):
    def collect(self) -> Iterable[Item]:
        """Yield metric families and health results for one cycle. May raise or hang: the runner copes."""
        ...

    def close(self) -> None:
        """Release resources (NVML handles, sockets, threads). Called on shutdown and on reload."""
        ...


@dataclass(frozen=True)
class CollectorSpec:
    name: str
    settings: type[CollectorSettings]
    implementation: str  # "package.module:Class", imported on first use

    @property
    def factory(self) -> Callable[[Any, CollectorContext], Collector]:
        module, _, attr = self.implementation.partition(":")
        return getattr(importlib.import_module(module), attr)


REGISTRY: dict[str, CollectorSpec] = {}


def declare(name: str, settings: type[CollectorSettings], implementation: str) -> None:
    """Make `name` known (config schema, docs) without importing `implementation` ("module:Class")."""
    spec = CollectorSpec(name=name, settings=settings, implementation=implementation)
    if REGISTRY.setdefault(name, spec) != spec:
        raise ValueError(
            f"collector {name} registered twice ({REGISTRY[name].implementation}, {implementation})"
        )


def register(name: str, settings: type[CollectorSettings]) -> Callable[[type], type]:
    """Marks the collector class; checks it against its declaration, or registers it (an undeclared one)."""

    def decorate(cls: type) -> type:
        declare(name, settings, f"{cls.__module__}:{cls.__qualname__}")
        return cls

    return decorate


def build(name: str, settings: CollectorSettings, ctx: CollectorContext) -> Collector:
    """The collector `name` with its own settings and its dependencies."""
    return REGISTRY[name].factory(settings, ctx)
