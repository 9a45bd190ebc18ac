"""The real agent joins the fleet on a real ensemble, publishes its health, and leaves on SIGTERM."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.agent_process import AgentProcess, free_port, only_collectors
from tests.integration.zk_ensemble import Ensemble

pytestmark = pytest.mark.integration
H200 = Path(__file__).resolve().parents[1] / "fixtures" / "nvml" / "h200-idle.json"


def fleet_ls(ensemble: Ensemble, cluster: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gpuwarden",
            "fleet",
            "ls",
            "--hosts",
            ensemble.hosts,
            "--cluster",
            cluster,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["agents"])


def wait_agents(ensemble: Ensemble, cluster: str, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        agents = fleet_ls(ensemble, cluster)
        if len(agents) == count:
            return agents
        time.sleep(0.3)
    raise AssertionError(f"expected {count} agents in {cluster}, last saw {agents}")


def test_the_agent_registers_its_health_and_deregisters_on_sigterm(
    zk_ensemble: Ensemble, tmp_path: Path
) -> None:
    cluster = "agent-e2e"
    config = {
        "agent": {"listen": f"127.0.0.1:{free_port()}"},
        "collectors": only_collectors(
            {"node": {"interval": 1}, "gpu": {"backend": "replay", "replay_file": str(H200)}}
        ),
        "fleet": {
            "enabled": True,
            "hosts": zk_ensemble.hosts.split(","),
            "cluster": cluster,
            "node": "gpu-node-7",
        },
    }
    agent = AgentProcess(tmp_path, config, watchdog_usec=None)
    try:
        agent.wait_message("READY=1")
        (record,) = wait_agents(zk_ensemble, cluster, 1)
        assert record["node"] == "gpu-node-7"
        assert record["health"] in {"HEALTHY", "DEGRADED"}, record  # published after the first collection
        assert [g["uuid"] for g in record["gpus"]] == [
            "GPU-a9410846-de97-78cd-d92c-1cd0578a34d7"
        ]  # replayed H200
    finally:
        assert agent.stop() == 0
    # A clean stop closes the session, so the ephemeral registration goes at once, not after a timeout.
    assert wait_agents(zk_ensemble, cluster, 0, timeout=5) == []
