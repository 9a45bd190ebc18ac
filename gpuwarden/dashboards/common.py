"""Variables, the dashboard frame, and JSON rendering shared by every dashboard."""

from __future__ import annotations

import json
from typing import Any

import grafanalib.core as g
from grafanalib._gen import DashboardEncoder

from gpuwarden.alert_rules.mixin import Mixin
from gpuwarden.dashboards.panels import DATASOURCE, Board

SCHEMA_VERSION = 39  # Grafana 10.x; pinned so the golden files do not move with grafanalib's default (12)
TAGS = ["gpuwarden"]


def datasource_var() -> g.Template:
    return g.Template(
        name="datasource", type="datasource", query="prometheus", label="Data source", default=""
    )


def query_var(name: str, label: str, query: str, *, multi: bool = True) -> g.Template:
    return g.Template(
        name=name,
        label=label,
        query=query,
        dataSource=DATASOURCE,
        multi=multi,
        includeAll=multi,
        allValue=".*" if multi else None,
        refresh=2,  # on time range change: nodes join and leave the fleet
        sort=1,
        default="$__all" if multi else "",
    )


def node_var(m: Mixin, multi: bool = True) -> g.Template:
    return query_var("node", "Node", f"label_values(up{m.selector()}, instance)", multi=multi)


def gpu_var(m: Mixin) -> g.Template:
    node = m.selector('instance=~"$node"')
    return query_var("gpu", "GPU", f"label_values(gpuwarden_gpu_up{node}, gpu)")


def frame(
    m: Mixin,
    uid: str,
    title: str,
    description: str,
    board: Board,
    variables: list[g.Template],
    links: list[g.DashboardLink] | None = None,
) -> g.Dashboard:
    return g.Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=TAGS,
        panels=board.panels,
        templating=g.Templating(list=[datasource_var(), *variables]),
        time=g.Time("now-6h", "now"),
        refresh="30s",
        timezone="browser",
        schemaVersion=SCHEMA_VERSION,
        links=links or [],
    ).auto_panel_ids()


def _clean(value: Any) -> Any:
    """grafanalib writes a base threshold as the string "null"; Grafana wants JSON null."""
    if isinstance(value, dict):
        out = {k: _clean(v) for k, v in value.items()}
        if out.get("value") == "null":
            out["value"] = None
        return out
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def to_json(dashboard: g.Dashboard) -> str:
    data = json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))
    return json.dumps(_clean(data), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
