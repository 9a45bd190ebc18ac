"""scale_signal on a real ZooKeeper ensemble: two agents get the same fleet-wide alert (Alertmanager sends
it to every agent), only the elected leader decides, the autoscaler's hook hears it once, and the cool-down
outlives a leader change because it is read from the decision's znode."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gpuwarden.fleet import FleetSettings
from gpuwarden.fleet.member import FleetMember
from gpuwarden.remediations.engine import Engine
from gpuwarden.remediations.section import RemediationSettings
from gpuwarden.remediations.triggers import Alert
from tests.integration.remediation_support import outcomes, wait_for
from tests.integration.zk_ensemble import Ensemble

pytestmark = pytest.mark.integration


class Autoscaler:
    """A hook that records what it is told (the autoscaler's side of the webhook)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/scale"


@pytest.fixture
def autoscaler() -> Iterator[Autoscaler]:
    hook = Autoscaler()
    yield hook
    hook.server.shutdown()


@pytest.fixture
def things() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for thing in reversed(made):
        thing.stop()


def agent(
    tmp: Path, ensemble: Ensemble, node: str, hook: str, things: list[Any]
) -> tuple[FleetMember, Engine]:
    member = FleetMember(
        FleetSettings(
            enabled=True, hosts=ensemble.addresses, cluster="scale-test", node=node, session_timeout=2
        ),
        lambda: {"version": "test", "health": "HEALTHY", "components": {}, "gpus": []},
    ).start()
    things.append(member)
    cfg = RemediationSettings.model_validate(
        {
            "enabled": True,
            "audit_log": str(tmp / node / "audit.jsonl"),
            "startup_grace_s": 0,
            "targets": {"fleet": {"kind": "http", "url": hook}},
            "playbooks": {
                "scale_signal": {
                    "enabled": True,
                    "target": "fleet",
                    "webhook_url": hook,
                    "decision_cooldown_s": 600,
                    "triggers": [
                        {"kind": "alert", "alertname": "InferenceP99LatencyHigh"},
                        {"kind": "alert", "alertname": "GpuFleetUnderutilized"},
                    ],
                    "rails": {"grace_s": 0, "cooldown_s": 0, "backoff_initial_s": 0},
                }
            },
        }  # fmt: skip
    )
    engine = Engine(cfg, fleet=lambda: member).start()
    things.append(engine)
    return member, engine


def signal_text(engine: Engine) -> str:
    registry = CollectorRegistry()
    registry.register(engine)
    return generate_latest(registry).decode()


def test_only_the_leader_signals_once_and_the_cooldown_survives_a_leader_change(
    tmp_path: Path, zk_ensemble: Ensemble, autoscaler: Autoscaler, things: list[Any]
) -> None:
    a = agent(tmp_path, zk_ensemble, "node-a", autoscaler.url, things)
    b = agent(tmp_path, zk_ensemble, "node-b", autoscaler.url, things)
    wait_for(lambda: a[0].is_leader != b[0].is_leader, timeout=30, what="one leader")
    (leader, leader_engine), (follower, follower_engine) = (a, b) if a[0].is_leader else (b, a)

    slow = Alert("InferenceP99LatencyHigh", "firing", "9f1c", "2026-12-01T10:00:00Z", {"severity": "page"})
    for engine in (leader_engine, follower_engine):
        (submitted,) = engine.alert(slow)
        assert submitted.accepted
    decided = wait_for(lambda: outcomes(leader_engine.audit.path), what="the leader's outcome")[0]
    skipped = wait_for(lambda: outcomes(follower_engine.audit.path), what="the follower's outcome")[0]

    assert decided["result"] == "succeeded", decided
    assert (skipped["result"], skipped["reason"]) == (
        "skipped",
        "not the fleet leader: only the leader emits the fleet's scale decision",
    )
    assert [(r["direction"], r["node"], r["cluster"]) for r in autoscaler.received] == [
        ("up", leader.client.node, "scale-test")
    ]
    data, _ = leader.client.zk.get(f"{leader.client.root}/scale")
    assert json.loads(data)["direction"] == "up"
    text = signal_text(leader_engine)
    assert 'gpuwarden_scale_signal{direction="up"} 1.0' in text
    assert 'gpuwarden_scale_signal{direction="down"} 0.0' in text
    assert "gpuwarden_scale_signal{" not in signal_text(follower_engine), "only the leader emits the signal"

    # The leader goes away; the new leader reads the last decision from ZooKeeper and keeps the cool-down.
    things.remove(leader)
    leader.stop()
    wait_for(lambda: follower.is_leader, timeout=30, what="the other agent leads")
    idle = Alert("GpuFleetUnderutilized", "firing", "77aa", "2026-12-01T10:01:00Z")
    (submitted,) = follower_engine.alert(idle)
    assert submitted.accepted
    second = wait_for(lambda: outcomes(follower_engine.audit.path)[1:], what="the new leader's outcome")[0]
    assert second["result"] == "skipped"
    assert (
        second["reason"].startswith("deduplicated: the fleet decided up ")
        and leader.client.node in second["reason"]
    )
    assert len(autoscaler.received) == 1, "the autoscaler heard a second decision within the cool-down"
