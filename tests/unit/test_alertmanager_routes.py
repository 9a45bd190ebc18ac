"""deploy/alertmanager/alertmanager.yml passes amtool, and each kind of alert reaches the right receiver."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gpuwarden.alert_rules import build
from gpuwarden.alert_rules.mixin import Mixin

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("amtool") is None:
        pytest.fail("amtool is missing: `make deps-debian` installs Debian's prometheus-alertmanager package")
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=60)


def test_amtool_accepts_the_config() -> None:
    done = amtool("check-config", str(CONFIG))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["alertname=GpuXidFatal", "severity=critical", "instance=n1"], "oncall-pager"),
        (["alertname=GpuMemoryNearFull", "severity=warning", "instance=n1"], "oncall-tickets"),
        (["alertname=Something", "severity=info"], "nobody"),
        (["alertname=Unlabelled"], "nobody"),
        (
            ["alertname=InferenceP99LatencyHigh", "severity=warning", "playbook=scale_signal", "instance=n1"],
            "gpuwarden-agents,oncall-tickets",
        ),
        (
            ["alertname=GpuFleetUnderutilized", "severity=info", "playbook=scale_signal"],
            "gpuwarden-agents,nobody",
        ),
        # The engine's own state carries the stuck playbook's name: people only, never the agents.
        (
            ["alertname=RemediationExhausted", "severity=critical", "playbook=worker_restart", "instance=n1"],
            "oncall-pager",
        ),
        (["alertname=RemediationStorm", "severity=critical", "instance=n1"], "oncall-pager"),
        (
            ["alertname=RemediationPausedTooLong", "severity=warning", "playbook=*", "instance=n1"],
            "oncall-tickets",
        ),
        (["alertname=GpuQuarantined", "severity=warning", "instance=n1", "uuid=GPU-2"], "oncall-tickets"),
    ],
)
def test_each_severity_and_playbook_alerts_reach_their_receivers(labels: list[str], receivers: str) -> None:
    done = amtool(
        "config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={receivers}", *labels
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_wrong_expectation_fails_the_route_test() -> None:
    done = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        "--verify.receivers=oncall-pager",
        "severity=warning",
    )
    assert done.returncode != 0


def test_every_playbook_alert_in_the_rules_is_routed_to_the_agents() -> None:
    for alert in build.alerts(Mixin()):
        if "playbook" not in alert.labels:
            continue
        labels = [
            f"alertname={alert.name}",
            f"severity={alert.severity}",
            f"playbook={alert.labels['playbook']}",
        ]
        done = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
        assert "gpuwarden-agents" in done.stdout, (alert.name, done.stdout)


def test_the_agents_webhook_reads_its_bearer_token_from_a_file() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    (agents,) = [r for r in config["receivers"] if r["name"] == "gpuwarden-agents"]
    (hook,) = agents["webhook_configs"]
    assert hook["url"].endswith("/v1/alerts")
    assert hook["http_config"]["authorization"]["credentials_file"]
    assert "credentials" not in hook["http_config"]["authorization"]


def test_inhibit_rules_name_only_alerts_that_exist() -> None:
    names = {a.name for a in build.alerts(Mixin())}
    for rule in yaml.safe_load(CONFIG.read_text())["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            value = matcher.split("=", 1)[1].lstrip("~").strip('"')
            assert set(value.split("|")) <= names, matcher
    lost = [
        r
        for r in yaml.safe_load(CONFIG.read_text())["inhibit_rules"]
        if "QuorumLost" in r["source_matchers"][0]
    ]
    assert any("ZooKeeperQuorumAtRisk" in r["target_matchers"][0] for r in lost)
