"""A thin layer over grafanalib: React panels only, each with a unit, a description, thresholds from the
Mixin, targets on the `datasource` variable, and a place on the 24-column grid that never overlaps.

grafanalib 0.7.1 quirks handled here: a Stat without thresholds emits `"steps": ""`; threshold 0 is the
string "null"; gauge and bar gauge write the Grafana 6 `options.fieldOptions` form; its Heatmap is the
Angular-era JSON. Every panel therefore gets its modern `fieldConfig.defaults` (unit, thresholds) through
`extraJson`, and the heatmap is a small Panel subclass of our own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import attr
import grafanalib.core as g

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Q:
    """One PromQL query of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False
    format: str = "time_series"


# Threshold steps: (value, colour); the first step's value is the base (JSON null).
Steps = Sequence[tuple[float | None, str]]
OK_ONLY: Steps = ((None, "green"),)


def above(limit: float, warn: float | None = None) -> Steps:
    """Green below, red from `limit` (orange from `warn`)."""
    steps: list[tuple[float | None, str]] = [(None, "green")]
    if warn is not None:
        steps.append((warn, "orange"))
    steps.append((limit, "red"))
    return steps


def below(limit: float) -> Steps:
    """Red below `limit`, green from it."""
    return ((None, "red"), (limit, "green"))


def _targets(queries: Sequence[Q]) -> list[g.Target]:
    return [
        g.Target(
            expr=q.expr,
            legendFormat=q.legend,
            refId=chr(ord("A") + i),
            instant=q.instant,
            format=q.format,
            datasource=DATASOURCE,
        )
        for i, q in enumerate(queries)
    ]


def _field_config(unit: str, steps: Steps, lo: float | None, hi: float | None) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]},
    }
    if lo is not None:
        defaults["min"] = lo
    if hi is not None:
        defaults["max"] = hi
    return {"fieldConfig": {"defaults": defaults}}


@attr.s
class HeatmapPanel(g.Panel):
    """Grafana's React heatmap on pre-bucketed Prometheus histograms (`format: heatmap`)."""

    unit: str = attr.ib(default="s")

    def to_json_data(self) -> dict[str, Any]:
        return self.panel_json(
            {
                "type": "heatmap",
                "options": {
                    "calculate": False,
                    "yAxis": {"unit": self.unit},
                    "cellValues": {"unit": "short"},
                    "color": {"mode": "scheme", "scheme": "Oranges"},
                },
            }
        )


KINDS = {
    "timeseries": g.TimeSeries,
    "stat": g.Stat,
    "gauge": g.GaugePanel,
    "bargauge": g.BarGauge,
    "table": g.Table,
    "heatmap": HeatmapPanel,
    "state-timeline": g.StateTimeline,
}


class Board:
    """Panels laid out left to right in rows of 24 columns; `row()` starts a titled section."""

    def __init__(self) -> None:
        self.panels: list[g.Panel] = []
        self._x = self._y = self._line_h = 0

    def _newline(self) -> None:
        self._y += self._line_h
        self._x = self._line_h = 0

    def row(self, title: str) -> None:
        if self._x:
            self._newline()
        self.panels.append(g.RowPanel(title=title, gridPos=g.GridPos(h=1, w=24, x=0, y=self._y)))
        self._y += 1

    def add(
        self,
        kind: str,
        title: str,
        description: str,
        unit: str,
        queries: Sequence[Q],
        *,
        w: int = 8,
        h: int = 8,
        steps: Steps = OK_ONLY,
        lo: float | None = None,
        hi: float | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        if self._x + w > 24:
            self._newline()
        pos = g.GridPos(h=h, w=w, x=self._x, y=self._y)
        self._x += w
        self._line_h = max(self._line_h, h)
        extra = _field_config(unit, steps, lo, hi)
        if kind == "timeseries":
            # Draw the alert's threshold as a line on the graph when there is one.
            extra["fieldConfig"]["defaults"]["custom"] = {
                "thresholdsStyle": {"mode": "line" if len(steps) > 1 else "off"}
            }
        if kind in ("stat", "gauge", "bargauge"):
            # The value now, not grafanalib's default mean over the range: a page says what is true now.
            extra["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}}
        if options:
            extra.setdefault("options", {}).update(options)
        kwargs: dict[str, Any] = {
            "title": title,
            "description": description,
            "dataSource": DATASOURCE,
            "targets": _targets(queries),
            "gridPos": pos,
            "extraJson": extra,
        }
        if kind == "stat":
            kwargs["thresholds"] = [g.Threshold("green", 0, 0.0)]  # replaced by extraJson; avoids "steps": ""
        self.panels.append(KINDS[kind](**kwargs))
