"""A real Prometheus scrapes the real agent: the target is up and the numbers arrive unchanged."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.integration.agent_process import AgentProcess, free_port, get, only_collectors

pytestmark = pytest.mark.integration


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, str]]:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is missing: `make test` installs Debian's prometheus package")
    agent_port, prom_port = free_port(), free_port()
    agent = AgentProcess(
        tmp_path,
        {
            "agent": {"listen": f"127.0.0.1:{agent_port}"},
            "collectors": only_collectors({"node": {"interval": 1}}),
        },
        watchdog_usec=None,
    )
    agent.wait_message("READY=1")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
        "scrape_configs": [
            {"job_name": "gpuwarden", "static_configs": [{"targets": [f"127.0.0.1:{agent_port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{agent_port}"
    finally:
        proc.terminate()
        proc.wait(10)
        agent.stop()


def query(prom: str, expr: str) -> list[dict[str, object]]:
    response = requests.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5).json()
    return list(response["data"]["result"])


def wait_for(prom: str, expr: str, timeout: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = query(prom, expr)
            if result:
                return result
        except (requests.RequestException, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never returned {expr}")


def test_prometheus_scrapes_the_agent_and_sees_the_same_values(prometheus: tuple[str, str]) -> None:
    prom, agent = prometheus
    (up,) = wait_for(prom, 'up{job="gpuwarden"} == 1')
    assert up["value"][1] == "1"  # type: ignore[index]
    (total,) = wait_for(prom, "gpuwarden_node_memory_total_bytes")
    exposed = next(
        line
        for line in get(f"{agent}/metrics").text.splitlines()
        if line.startswith("gpuwarden_node_memory_total")
    )
    assert float(total["value"][1]) == float(exposed.split()[-1])  # type: ignore[index]
    (success,) = wait_for(prom, 'gpuwarden_collector_success{collector="node"}')
    assert success["value"][1] == "1"  # type: ignore[index]
    # No series was dropped or renamed by Prometheus' parser: every family the agent serves is queryable.
    names = {
        line.split("{")[0].split()[0] for line in get(f"{agent}/metrics").text.splitlines() if line[:1] != "#"
    }
    stored = set(requests.get(f"{prom}/api/v1/label/__name__/values", timeout=5).json()["data"])
    assert {n for n in names if n.startswith("gpuwarden_")} <= stored
