"""A real Alertmanager, on the generated config, delivers a playbook alert to the agents' webhook with the
bearer token read from a file. The receiver here is a plain HTTP server started by the test: the agent's
`/v1/alerts` route is not built yet (remediation API issue); once it is, point `agents_url` at the agent."""

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
from gpuwarden.alert_rules.routing import Deployment, alertmanager
from tests.integration.agent_process import free_port

pytestmark = pytest.mark.integration
TOKEN = "s3cret-webhook-token"


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
