"""Real Alertmanagers posting to the real agent's /v1/alerts: a firing alert with a `playbook` label starts
one dry-run run; the second delivery of an HA pair starts none; the resolved notification starts none; an
alert about another registered node is forwarded to that node's agent (real ZooKeeper) and runs there once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from gpuwarden.remediations.audit import read
from tests.integration.api_support import (
    TOKEN,
    agent_config,
    alertmanager,
    firing,
    post_alerts,
    start_agent,
    token_file,
    triggers,
    wait,
    webhook_sent,
)
from tests.integration.zk_ensemble import Ensemble

pytestmark = pytest.mark.integration
# An HTTP hook target nobody answers: the playbook is dry-run, so the engine plans and records, never acts.
TARGET = {"kind": "http", "url": "http://127.0.0.1:9/hook", "ready_url": "http://127.0.0.1:9/ready"}
DRY_RESTART = {
    "targets": {"worker": TARGET},
    "playbooks": {
        "worker_restart": {
            "enabled": True,
            "dry_run": True,
            "triggers": [{"kind": "alert", "alertname": "WorkerDown"}],
            "rails": {"grace_s": 0, "cooldown_s": 0},
        }
    },
}


def test_an_ha_pair_delivering_a_firing_then_resolved_alert_starts_exactly_one_dry_run(
    tmp_path: Path,
) -> None:
    config = agent_config(tmp_path, "gpu-node-1", DRY_RESTART)
    agent, url = start_agent(tmp_path, config)
    audit = Path(config["remediation"]["audit_log"])
    token = am_token(tmp_path)
    try:
        with (
            alertmanager(tmp_path, url, token, "am1") as am1,
            alertmanager(tmp_path, url, token, "am2") as am2,
        ):
            pair = (am1, am2)
            alert = firing("WorkerDown", instance="gpu-node-1", playbook="worker_restart", severity="warning")
            for am in pair:  # both members of the pair got the alert from Prometheus
                post_alerts(am, [alert])
            wait(
                lambda: all(webhook_sent(am)[0] >= 1 for am in (am1, am2)), 30, "both Alertmanagers delivered"
            )
            (run,) = wait(lambda: triggers(audit), 10, "one run")
            assert run["playbook"] == "worker_restart" and run["source"] == "alert"
            outcome = wait(lambda: [r for r in _records(audit) if r["step"] == "outcome"], 10, "an outcome")
            assert outcome[0]["result"] == "dry_run"
            alert["endsAt"] = datetime.now(UTC).isoformat()
            for am in (am1, am2):
                post_alerts(am, [alert])
            wait(
                lambda: all(webhook_sent(am)[0] >= 2 for am in (am1, am2)), 30, "resolved notifications sent"
            )
            assert all(webhook_sent(am)[1] == 0 for am in (am1, am2)), "a delivery failed"
        assert len(triggers(audit)) == 1
    finally:
        agent.stop()


def test_an_alert_for_another_registered_node_is_forwarded_there_and_runs_there_once(
    tmp_path: Path, zk_ensemble: Ensemble
) -> None:
    fleet = {"enabled": True, "hosts": zk_ensemble.hosts.split(","), "cluster": "api-forward"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    config_a = agent_config(tmp_path / "a", "gpu-node-a", None, fleet)
    config_b = agent_config(tmp_path / "b", "gpu-node-b", DRY_RESTART, fleet)
    agent_a, url_a = start_agent(tmp_path / "a", config_a)
    agent_b, _ = start_agent(tmp_path / "b", config_b)
    audit_b = Path(config_b["remediation"]["audit_log"])
    zk = KazooClient(hosts=zk_ensemble.hosts)
    zk.start(timeout=10)
    try:
        wait(lambda: zk.exists("/gpuwarden/api-forward/serverset/gpu-node-b"), 30, "gpu-node-b registered")
        token = am_token(tmp_path)
        with alertmanager(tmp_path, url_a, token) as am:
            post_alerts(am, [firing("WorkerDown", instance="gpu-node-b", playbook="worker_restart")])
            (run,) = wait(lambda: triggers(audit_b), 30, "a run on gpu-node-b")
            assert run["labels"]["instance"] == "gpu-node-b"
            wait(lambda: webhook_sent(am)[0] >= 1, 10, "the delivery counted")
            assert webhook_sent(am)[1] == 0
        assert len(triggers(audit_b)) == 1
        assert "forwarded" not in agent_b.stderr()  # B handled it; it did not pass it on again
    finally:
        zk.stop()
        zk.close()
        agent_a.stop()
        agent_b.stop()


def am_token(tmp: Path) -> Path:
    """Alertmanager's `credentials_file` holds the bare token (it sends the whole file, trimmed)."""
    (tmp / "alertmanager").mkdir(exist_ok=True)
    return token_file(tmp / "alertmanager", f"{TOKEN}\n")


def _records(audit: Path) -> list[dict[str, Any]]:
    return list(read(audit))
