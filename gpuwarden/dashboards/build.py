"""`gpuwarden dashboards build --out DIR`: one JSON file per dashboard under DIR/grafana/."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

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


def cli(args: argparse.Namespace) -> int:
    out = Path(args.out)
    for rel, text in sorted(render(Mixin(job=args.job)).items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="directory to write grafana/*.json into")
    p.add_argument("--job", default=Mixin.job, help="the agents' scrape job (the job= of every query)")
