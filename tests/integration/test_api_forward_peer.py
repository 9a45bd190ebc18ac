"""A real agent on a real ensemble forwards an alert to a registered peer that answers forever or trickles:
Alertmanager gets a 503 with the reason within the forward deadline, and the agent keeps serving."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
from kazoo.client import KazooClient

from gpuwarden.fleet.registration import serverset_member
from tests.integration.api_support import TOKEN, agent_config, start_agent, wait
from tests.integration.zk_ensemble import Ensemble
from tests.local_servers import serve_handler

pytestmark = pytest.mark.integration
CLUSTER = "api-forward-peer"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager" / "webhook-v4-firing.json"


class BrokenAgent(BaseHTTPRequestHandler):
    """Registered as an agent, answers /v1/alerts without end (`/endless`) or a byte at a time."""

    protocol_version = "HTTP/1.1"
    endless = True

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if not BrokenAgent.endless:
            self.send_header("Content-Length", "1000000")
        self.end_headers()
        try:
            for _ in range(100_000):
                self.wfile.write(b" " * (65536 if BrokenAgent.endless else 1))
                self.wfile.flush()
                if not BrokenAgent.endless:
                    time.sleep(0.05)
        except OSError:
            pass  # the agent gave up

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broken_peer() -> Iterator[str]:
    with serve_handler(BrokenAgent) as url:
        yield url


def delivery(instance: str) -> dict[str, object]:
    payload: dict[str, object] = json.loads(FIXTURE.read_text())
    alert = payload["alerts"][0]  # type: ignore[index]
    alert["labels"] = {"alertname": "WorkerDown", "instance": instance, "playbook": "worker_restart"}
    return payload


@pytest.mark.parametrize("endless", [True, False], ids=["endless", "trickle"])
def test_a_registered_peer_that_never_finishes_its_answer_costs_a_503_not_the_agent(
    tmp_path: Path, zk_ensemble: Ensemble, broken_peer: str, endless: bool
) -> None:
    BrokenAgent.endless = endless
    fleet = {"enabled": True, "hosts": zk_ensemble.hosts.split(","), "cluster": CLUSTER}
    config = agent_config(tmp_path, "gpu-node-a", None, fleet)
    config["api"]["forward_timeout_s"] = 2.0
    agent, url = start_agent(tmp_path, config)
    zk = KazooClient(hosts=zk_ensemble.hosts)
    zk.start(timeout=10)
    try:
        wait(lambda: zk.exists(f"/gpuwarden/{CLUSTER}/serverset/gpu-node-a"), 30, "gpu-node-a registered")
        zk.create(f"/gpuwarden/{CLUSTER}/serverset/gpu-node-b", serverset_member(broken_peer), ephemeral=True)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        answer = requests.post(f"{url}/v1/alerts", json=delivery("gpu-node-b"), headers=auth, timeout=30)
        assert answer.status_code == 503, answer.text  # Alertmanager sends the group again
        (result,) = answer.json()["alerts"]
        assert result["outcome"] == "not_forwarded" and result["node"] == "gpu-node-b"
        why = "too_large: body larger than 1048576 bytes" if endless else "timeout: no complete answer"
        assert why in result["reason"], result["reason"]
        assert requests.get(f"{url}/metrics", timeout=5).status_code == 200  # still serving
        assert agent.proc.poll() is None and "Traceback" not in agent.stderr()
    finally:
        zk.stop()
        zk.close()
        agent.stop()
