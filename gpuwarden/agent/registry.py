"""The collector registry: `@register("node", NodeSettings)` on a collector class.

`gpuwarden.collectors` declares every collector explicitly, so the list stays greppable (telegraf's
`all/`, gpud's `all.go`). The config schema's `collectors` section is built from this registry: each
collector owns its settings model, and the one YAML file still validates as a whole. A declared
collector's implementation is imported when it is first built, not when the config is read: a disabled
collector costs its settings model only, not its libraries (requests, kazoo, onnxruntime...), which
bench/footprint.py measures in the agent's resident memory.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client.core import Metric
from pydantic import BaseModel, ConfigDict, Field

from gpuwarden.health import HealthResult
from gpuwarden.paths import Paths

if TYPE_CHECKING:
    from gpuwarden.config import AgentConfig


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectorSettings(StrictModel):
    enabled: bool = Field(True, description="run this collector")
    interval: float = Field(15.0, gt=0, description="seconds between two collections")
    timeout: float = Field(10.0, gt=0, description="deadline for one collection, in seconds")

    def problems(self, config: AgentConfig) -> list[str]:
        """Checks that need other sections of the config; `key.path: reason` lines, empty when fine."""
        return []


@dataclass(frozen=True)
class CollectorContext:
    """What a collector may use besides its own settings. Constructors do no slow I/O."""

    paths: Paths
    log: logging.Logger
    config: AgentConfig


Item = Metric | HealthResult


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


def build(name: str, config: AgentConfig, log: logging.Logger) -> Collector:
    """The collector `name` as the daemon builds it: its settings and the paths from `config`."""
    ctx = CollectorContext(paths=config.paths.paths(), log=log.getChild(name), config=config)
    return REGISTRY[name].factory(config.collector_settings(name), ctx)
