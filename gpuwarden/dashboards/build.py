"""`gpuwarden dashboards build --out DIR`: one JSON file per dashboard under DIR/grafana/."""

from __future__ import annotations

from collections.abc import Callable

import grafanalib.core as g

from gpuwarden.alert_rules.mixin import Mixin
from gpuwarden.dashboards import fleet, gpu_health, node, services
from gpuwarden.dashboards.common import to_json

DASHBOARDS: dict[str, Callable[[Mixin], g.Dashboard]] = {
    "fleet": fleet.dashboard,
    "node": node.dashboard,
    "gpu-health": gpu_health.dashboard,
    "inference": services.inference,
    "zookeeper": services.zookeeper,
    "remediation": services.remediation,
}


def build(m: Mixin | None = None) -> dict[str, g.Dashboard]:
    m = m or Mixin()
    return {name: make(m) for name, make in DASHBOARDS.items()}


def render(m: Mixin | None = None) -> dict[str, str]:
    """Relative path → JSON text."""
    return {f"grafana/{name}.json": to_json(d) for name, d in build(m).items()}
