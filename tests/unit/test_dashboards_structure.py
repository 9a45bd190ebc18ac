"""The committed dashboards are current; every panel is a React panel with a unit, a description, a grid
place that overlaps no other, and targets on the datasource variable that read only declared series."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuwarden.alert_rules import series
from gpuwarden.alert_rules.recording import RECORDED
from gpuwarden.dashboards import build

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
REACT = {"timeseries", "stat", "gauge", "bargauge", "table", "heatmap", "state-timeline", "row"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(GRAFANA.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def exprs() -> list[str]:
    return [t["expr"] for d in dashboards().values() for p in panels(d) for t in p["targets"]]


def test_the_committed_dashboards_are_what_the_generator_writes() -> None:
    rendered = build.render()
    assert {f"grafana/{p.name}" for p in GRAFANA.glob("*.json")} == set(rendered)
    for rel, text in rendered.items():
        assert (ROOT / "deploy" / rel).read_text() == text, f"deploy/{rel} is stale: run `make generate`"


def test_the_six_dashboards_have_stable_unique_uids_and_unique_panel_ids() -> None:
    boards = dashboards()
    assert set(boards) == {"fleet", "node", "gpu-health", "inference", "zookeeper", "remediation"}
    uids = [d["uid"] for d in boards.values()]
    assert len(set(uids)) == len(uids) and all(u.startswith("gpuwarden-") for u in uids)
    for name, d in boards.items():
        ids = [p["id"] for p in d["panels"]]
        assert None not in ids and len(set(ids)) == len(ids), name
        assert d["schemaVersion"] == 39


def test_only_react_panel_types() -> None:
    for name, d in dashboards().items():
        assert {p["type"] for p in d["panels"]} <= REACT, name


def test_no_two_panels_overlap_and_all_fit_the_grid() -> None:
    for name, d in dashboards().items():
        boxes = [p["gridPos"] for p in d["panels"]]
        for b in boxes:
            assert b["x"] >= 0 and b["x"] + b["w"] <= 24 and b["h"] > 0, (name, b)
        for a, b in combinations(boxes, 2):
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, (name, a, b)


def test_every_panel_has_a_unit_a_description_and_targets_on_the_datasource_variable() -> None:
    for name, d in dashboards().items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        for p in panels(d):
            where = (name, p["title"])
            assert p["fieldConfig"]["defaults"]["unit"], where
            assert len(p["description"]) > 20, where
            assert p["datasource"] == DATASOURCE, where
            assert p["targets"], where
            ref_ids = [t["refId"] for t in p["targets"]]
            assert all(ref_ids) and len(set(ref_ids)) == len(ref_ids), where
            for t in p["targets"]:
                assert t["datasource"] == DATASOURCE, where
                assert "rate(" not in t["expr"] or "$__rate_interval" in t["expr"], where
            steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert steps[0]["value"] is None and all(
                isinstance(s["value"], float | int) for s in steps[1:]
            ), where


def test_thresholds_are_the_numbers_the_alerts_use() -> None:
    fleet = {p["title"]: p for p in panels(dashboards()["fleet"])}
    alerts = {
        r["alert"]: r
        for r in yaml.safe_load((ROOT / "deploy/prometheus/rules/inference.yml").read_text())["groups"][0][
            "rules"
        ]
    }
    slo = float(alerts["InferenceP99LatencyHigh"]["expr"].rsplit(">", 1)[1])
    low = float(alerts["GpuFleetUnderutilized"]["expr"].rsplit("<", 1)[1])
    assert (
        fleet["p99 latency (worst node)"]["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] == slo
    )
    assert fleet["Fleet GPU utilization"]["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] == low


def test_every_query_reads_only_series_some_catalog_declares() -> None:
    assert series.undeclared(exprs(), RECORDED) == {}


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    """promtool parses each query as a throw-away recording rule (variables replaced by plain values)."""
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: `make deps-debian` installs Debian's prometheus package")
    rules = []
    for i, expr in enumerate(exprs()):
        text = expr.replace("$__rate_interval", "5m")
        text = re.sub(r"\$\{?\w+\}?", "x", text)
        rules.append({"record": f"dashboard:query:{i}", "expr": text})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
