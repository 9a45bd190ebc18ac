"""A real Alertmanager on the generated config: it delivers a playbook alert to the agents' webhook with the
bearer token read from a file, and routes what a real Prometheus fires on the generated rules. The webhook
receiver is a plain HTTP server started by the test: the agent's `/v1/alerts` route is not built yet (the
remediation API issue); once it is, point `agents_url` at the agent."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from gpuwarden.alert_rules import build
from gpuwarden.alert_rules.mixin import Mixin
from gpuwarden.alert_rules.routing import Deployment, alertmanager, prometheus
from tests.integration.agent_process import AgentProcess, free_port, only_collectors
from tests.integration.zk_ensemble import Ensemble

pytestmark = pytest.mark.integration
TOKEN = "s3cret-webhook-token"
ROOT = Path(__file__).resolve().parents[2]
XID79 = ROOT / "tests" / "fixtures" / "nvml" / "h200-xid79.json"


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.headers.get("Authorization", ""), json.loads(body)))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail("Alertmanager is missing: `make deps-debian` installs Debian's prometheus-alertmanager")
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.received = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    deployment = Deployment(
        agents_url=f"http://127.0.0.1:{receiver.server_address[1]}/v1/alerts",
        agents_token_file=str(token_file),
    )
    (tmp_path / "alertmanager.yml").write_text(
        yaml.safe_dump(alertmanager(build.groups(Mixin()), deployment))
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no HA gossip in a test
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "alertmanager.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        yield url, Receiver.received
    finally:
        proc.terminate()
        proc.wait(10)
        receiver.shutdown()


def test_a_playbook_alert_reaches_the_agents_webhook_with_the_bearer_token(
    stack: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    url, received = stack
    now = datetime.now(UTC).isoformat()
    alerts = [
        {
            "labels": {
                "alertname": "InferenceP99LatencyHigh",
                "severity": "warning",
                "playbook": "scale_signal",
                "instance": "gpu-node-1",
                "job": "gpuwarden",
            },
            "annotations": {"summary": "p99 high"},
            "startsAt": now,
        },
        {  # no playbook label: pages people only, never reaches the agents
            "labels": {"alertname": "GpuXidFatal", "severity": "critical", "instance": "gpu-node-1"},
            "startsAt": now,
        },
    ]
    assert requests.post(f"{url}/api/v2/alerts", json=alerts, timeout=5).status_code == 200
    deadline = time.monotonic() + 40  # the agents' route waits group_wait (10 s) before the first send
    while not received and time.monotonic() < deadline:
        time.sleep(0.5)
    assert received, "Alertmanager delivered nothing to the agents' webhook"
    auth, payload = received[0]
    assert auth == f"Bearer {TOKEN}"
    assert payload["version"] == "4" and payload["status"] == "firing"
    assert payload["receiver"] == "gpuwarden-agents"
    (alert,) = payload["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"]["alertname"] == "InferenceP99LatencyHigh"
    assert alert["labels"]["playbook"] == "scale_signal"
    assert all(a["labels"].get("playbook") for _, p in received for a in p["alerts"])


def test_an_xid_on_the_running_agent_fires_in_prometheus_and_reaches_alertmanager_routed_to_the_pager(
    stack: tuple[str, list[tuple[str, dict[str, Any]]]], zk_ensemble: Ensemble, tmp_path: Path
) -> None:
    """The whole chain on the generated files: the agent (a replayed H200 that reports XID 79) registers in
    ZooKeeper, Prometheus discovers it there and evaluates the rules, Alertmanager routes GpuXidFatal."""
    am, _ = stack
    cluster, node = "alert-chain", "gpu-node-xid"
    hosts = zk_ensemble.hosts.split(",")
    config = {
        "agent": {"listen": f"127.0.0.1:{free_port()}"},
        "collectors": only_collectors(
            {"gpu": {"interval": 1, "backend": "replay", "replay_file": str(XID79)}}
        ),
        "fleet": {"enabled": True, "hosts": hosts, "cluster": cluster, "node": node},
    }
    agent = AgentProcess(tmp_path, config, watchdog_usec=None)
    deployment = Deployment(
        alertmanager=am.removeprefix("http://"),
        zookeeper=tuple(hosts),
        serverset_paths=(f"/gpuwarden/{cluster}/serverset",),
        scrape_interval="1s",
    )
    rules = sorted(str(p) for p in (ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prometheus(rules, deployment, Mixin().job)))
    proc = None
    try:
        agent.wait_message("READY=1", timeout=60)
        proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{free_port()}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        fired: list[dict[str, Any]] = []
        while not fired and time.monotonic() < deadline:
            alerts = requests.get(f"{am}/api/v2/alerts", timeout=5).json()
            fired = [a for a in alerts if a["labels"]["alertname"] == "GpuXidFatal"]
            time.sleep(0.5)
        assert fired, "GpuXidFatal never reached Alertmanager"
        (alert,) = fired
        assert alert["labels"]["instance"] == node and alert["labels"]["xid"] == "79"
        assert alert["labels"]["severity"] == "critical"
        assert [r["name"] for r in alert["receivers"]] == ["oncall-pager"]
        assert alert["annotations"]["runbook_url"].endswith("/GpuXidFatal.md")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        agent.stop()
