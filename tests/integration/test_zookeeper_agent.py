"""The real agent (subprocess) checking a real ensemble: /metrics and /health follow the quorum."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.agent_process import AgentProcess, free_port, get, only_collectors
from tests.integration.zk_ensemble import Ensemble

pytestmark = pytest.mark.integration


def quorum_health(url: str) -> dict[str, str]:
    components = {c["component"]: c for c in get(f"{url}/health").json()["components"]}
    return components["zookeeper.quorum"]


def wait_health(url: str, state: str, timeout: float = 10.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while (health := quorum_health(url))["state"] != state and time.monotonic() < deadline:
        time.sleep(0.1)
    return health


def test_the_agent_exports_quorum_and_reports_its_loss_within_a_few_probe_intervals(
    make_ensemble: Callable[..., Ensemble], tmp_path: Path
) -> None:
    ensemble = make_ensemble()
    port = free_port()
    config = {
        "agent": {"listen": f"127.0.0.1:{port}"},
        "collectors": only_collectors(
            {"zookeeper": {"interval": 0.5, "ensemble": "e2e", "servers": ensemble.addresses}}
        ),
    }
    proc = AgentProcess(tmp_path, config, watchdog_usec=None)
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_message("READY=1")
        scrape = get(f"{url}/metrics")
        check = subprocess.run(["promtool", "check", "metrics"], input=scrape.content, capture_output=True)
        assert check.returncode == 0 and check.stdout + check.stderr == b"", check.stdout + check.stderr
        assert 'gpuwarden_zookeeper_quorum_ok{ensemble="e2e"} 1.0' in scrape.text
        assert 'gpuwarden_collector_success{collector="zookeeper"} 1.0' in scrape.text
        assert quorum_health(url)["state"] == "HEALTHY"

        leader = ensemble.leader()
        assert leader is not None
        for member in [m for m in ensemble.members if m is not leader][:2]:
            ensemble.kill(member)
        health = wait_health(url, "UNHEALTHY")
        assert health["state"] == "UNHEALTHY" and "NO_QUORUM" in health["reason"], health
        assert 'gpuwarden_zookeeper_quorum_ok{ensemble="e2e"} 0.0' in get(f"{url}/metrics").text
    finally:
        proc.stop()
