"""The rule files under deploy/prometheus are current, pass promtool, and every alert honours the contract."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gpuwarden.alert_rules import build, series
from gpuwarden.alert_rules.mixin import Mixin, reasons
from gpuwarden.alert_rules.recording import RECORDED

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMTOOL_TESTS = ROOT / "tests" / "fixtures" / "rules" / "alerts.test.yml"
RUNBOOKS = ROOT / "docs" / "runbooks"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: `make deps-debian` installs Debian's prometheus package")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)


def rules() -> list[dict[str, object]]:
    out = []
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += group["rules"]
    return out


def test_the_committed_prometheus_and_alertmanager_files_are_what_the_generator_writes() -> None:
    for rel, text in build.render().items():
        assert (DEPLOY / rel).read_text() == text, f"deploy/{rel} is stale: run `make generate`"
    on_disk = {str(p.relative_to(DEPLOY)) for p in DEPLOY.glob("*/**/*.yml")}
    assert on_disk == set(build.render()), "a file under deploy/ is no longer generated"


def test_every_rule_file_passes_promtool_check_rules_with_every_lint() -> None:
    files = sorted(str(p) for p in (DEPLOY / "prometheus" / "rules").glob("*.yml"))
    done = promtool("check", "rules", "--lint=all", "--lint-fatal", *files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_prometheus_config_passes_promtool_check_config() -> None:
    done = promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_promtool_unit_tests_of_every_alert_pass() -> None:
    done = promtool("test", "rules", str(PROMTOOL_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_case_that_fires_and_a_case_that_must_not() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(PROMTOOL_TESTS.read_text())["tests"]:
        for check in case.get("promql_expr_test", []):
            match = re.fullmatch(r'ALERTS\{alertname="(\w+)"(,alertstate="firing")?\}', check["expr"])
            assert match, f"unexpected promql_expr_test {check['expr']}"
            (fires if check["exp_samples"] else quiet).add(match.group(1))
    names = {a.name for a in build.alerts(Mixin())}
    assert names - fires == set(), "alerts without a firing case"
    assert names - quiet == set(), "alerts without a must-not-fire case"


def test_every_alert_has_for_severity_summary_description_and_a_runbook_page() -> None:
    alerts = [r for r in rules() if "alert" in r]
    assert len(alerts) == len(build.alerts(Mixin()))
    for rule in alerts:
        assert "for" in rule, rule["alert"]
        labels, notes = rule["labels"], rule["annotations"]
        assert labels["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert not any("$value" in v for v in labels.values()), f"{rule['alert']}: $value in a label"
        assert notes["summary"] and notes["description"], rule["alert"]
        assert notes["runbook_url"] == Mixin().runbook(str(rule["alert"]))
        assert (RUNBOOKS / f"{rule['alert']}.md").is_file(), f"docs/runbooks/{rule['alert']}.md is missing"


def test_the_contract_alerts_carry_the_scale_signal_playbook() -> None:
    by_name = {r["alert"]: r for r in rules() if "alert" in r}
    for name in ("InferenceP99LatencyHigh", "GpuFleetUnderutilized"):
        assert by_name[name]["labels"]["playbook"] == "scale_signal"  # type: ignore[index]
    assert 'quantile="0.99"' in str(by_name["InferenceP99LatencyHigh"]["expr"])
    for name in (
        "ZooKeeperQuorumLost",
        "ZooKeeperQuorumAtRisk",
        "GpuXidFatal",
        "GpuEccUncorrectable",
        "GpuRowRemapFailure",
        "GpuMemoryNearFull",
        "GpuMissing",
        "InferenceEngineProbeFailing",
        "InferenceErrorRatioHigh",
        "RemediationExhausted",
        "GpuwardenAgentDown",
    ):
        assert name in by_name


def test_every_rule_reads_only_series_some_catalog_declares() -> None:
    exprs = [str(r["expr"]) for r in rules()]
    assert series.undeclared(exprs, RECORDED) == {}


def test_the_series_check_catches_a_renamed_metric() -> None:
    assert series.undeclared(["rate(gpuwarden_gpu_xid_total{job='x'}[5m]) > 0"]) == {
        "rate(gpuwarden_gpu_xid_total{job='x'}[5m]) > 0": {"gpuwarden_gpu_xid_total"}
    }
    with pytest.raises(KeyError):
        series.name("gpuwarden_business_up")


def test_every_threshold_and_window_says_why() -> None:
    assert all(len(why.split()) >= 5 for why in reasons().values()), reasons()
