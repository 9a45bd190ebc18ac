"""The real agent, configured from YAML, watches the real worker: /metrics and /health end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.agent_process import AgentProcess, free_port, get, only_collectors
from tests.integration.worker_process import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[WorkerProcess, str]]:
    (tmp_path / "worker").mkdir()
    with WorkerProcess(tmp_path / "worker") as worker:
        port = free_port()
        business = {
            "url": worker.url + "/metrics",
            "interval": 0.5,
            "timeout": 2,
            "scrape_timeout": 1,
            "window": 3,
            "min_requests": 5,
        }
        config = {
            "agent": {"listen": f"127.0.0.1:{port}"},
            "collectors": only_collectors({"inference": business}),
        }
        agent = AgentProcess(tmp_path, config)
        try:
            agent.wait_message("READY=1")
            yield worker, f"http://127.0.0.1:{port}"
        finally:
            agent.stop()


def figures(url: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(get(f"{url}/metrics").text):
        for s in family.samples:
            if s.name.startswith("gpuwarden_inference_"):
                out[s.name + (f"{{{s.labels['quantile']}}}" if "quantile" in s.labels else "")] = s.value
    return out


def component(url: str, name: str) -> dict[str, Any]:
    health = get(f"{url}/health").json()
    return next(c for c in health["components"] if c["component"] == name)


def test_an_error_burst_on_the_worker_shows_in_the_agents_metrics_and_health(
    watched: tuple[WorkerProcess, str],
) -> None:
    worker, url = watched
    body = {"inputs": json.loads((worker.model_dir / "canary.json").read_text())["inputs"]}
    worker.fault("errors", rate=1.0, duration_s=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for _ in range(5):
            requests.post(worker.url + "/v2/models/canary/infer", json=body, timeout=5)
        time.sleep(0.2)
        if component(url, "inference.errors")["state"] == "DEGRADED":
            break
    got = figures(url)
    assert got["gpuwarden_inference_up"] == 1
    assert got["gpuwarden_inference_error_ratio"] == 1.0
    assert got["gpuwarden_inference_requests_per_second"] > 0
    errors = component(url, "inference.errors")
    assert errors["state"] == "DEGRADED" and errors["suggested_action"] == "check_workload"
    assert "error ratio 100.00%" in errors["reason"]
    assert component(url, "inference.target")["state"] == "HEALTHY"
    # The worker logged what the OOM remediation will look for.
    assert "CUDA out of memory" in worker.log()


def test_a_killed_worker_turns_the_target_unhealthy_in_the_agent(watched: tuple[WorkerProcess, str]) -> None:
    worker, url = watched
    worker.stop()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and component(url, "inference.target")["state"] != "UNHEALTHY":
        time.sleep(0.25)
    target = component(url, "inference.target")
    assert target["state"] == "UNHEALTHY" and "cannot connect to" in target["reason"]
    assert figures(url)["gpuwarden_inference_up"] == 0


def test_a_bad_business_section_stops_the_agent_with_exit_78_naming_each_key(tmp_path: Path) -> None:
    bad = tmp_path / "agent.yaml"
    bad.write_text("collectors:\n  inference:\n    enabled: true\n    profile: generic\n    window: 5\n")
    result = subprocess.run(
        [sys.executable, "-m", "gpuwarden", "agent", "--config", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 78
    assert [line.removeprefix("config error: ") for line in result.stderr.splitlines()] == [
        "collectors.inference.url: the generic profile needs the server's metrics URL",
        "collectors.inference.mapping: the generic profile needs mapping.requests or mapping.success",
        "collectors.inference.window: must be at least twice the interval (30s) to hold two scrapes",
    ]
    assert "Traceback" not in result.stderr
