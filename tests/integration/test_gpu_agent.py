"""The real agent as a subprocess with the GPU collector: on the H200 recording, on a hung driver, and
with no driver at all (this CI machine's real situation)."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.nvml.support import NVML, kmsg_logged
from tests.integration.agent_process import AgentProcess, free_port, get, only_collectors

pytestmark = pytest.mark.integration


def start(tmp_path: Path, gpu: dict[str, Any], log_format: str = "text") -> tuple[AgentProcess, str]:
    port = free_port()
    config = {
        "agent": {"listen": f"127.0.0.1:{port}", "log_format": log_format},
        "paths": {"devfs": str(tmp_path), "procfs": str(NVML / "proc")},
        "collectors": only_collectors({"gpu": {"interval": 0.25, "timeout": 3, **gpu}}),
    }
    proc = AgentProcess(tmp_path, config)
    proc.wait_message("READY=1")
    return proc, f"http://127.0.0.1:{port}"


def components(url: str) -> dict[str, dict[str, str]]:
    return {c["component"]: c for c in get(f"{url}/health").json()["components"]}


def threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


@pytest.fixture
def replayed(tmp_path: Path) -> Iterator[tuple[AgentProcess, str]]:
    (tmp_path / "kmsg").write_text(kmsg_logged((NVML / "kmsg-xid.txt").read_text()))
    proc, url = start(
        tmp_path, {"backend": "replay", "replay_file": str(NVML / "h200-busy.json"), "expected_gpus": 1}
    )
    yield proc, url
    proc.stop()


def test_the_agent_serves_the_recorded_h200_and_the_scrape_passes_promtool(
    replayed: tuple[AgentProcess, str],
) -> None:
    _, url = replayed
    body = get(f"{url}/metrics").content
    check = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert check.returncode == 0 and check.stdout + check.stderr == b"", (
        check.stdout + check.stderr
    ).decode()
    text = body.decode()
    assert 'gpuwarden_gpu_info{driver_version="580.159.04",gpu="0",name="NVIDIA H200"' in text
    assert 'gpuwarden_gpu_utilization_ratio{gpu="0",uuid="GPU-' in text
    assert 'gpuwarden_collector_success{collector="gpu"} 1.0' in text
    health = components(url)
    assert health["gpu.0.memory"]["state"] == "HEALTHY"
    # The kernel-log fixture carries XID 119 and 79 for the H200's PCI id: the node must be rebooted.
    assert (
        health["gpu.0.xid"]["state"] == "UNHEALTHY"
        and health["gpu.0.xid"]["suggested_action"] == "reboot_node"
    )


def test_a_replayed_xid_79_is_logged_as_one_json_transition_with_the_gpu_labels(tmp_path: Path) -> None:
    (tmp_path / "kmsg").write_text(kmsg_logged((NVML / "kmsg-xid.txt").read_text()))
    proc, url = start(
        tmp_path, {"backend": "replay", "replay_file": str(NVML / "h200-busy.json")}, log_format="json"
    )
    try:
        xid = components(url)["gpu.0.xid"]
    finally:
        proc.stop()
    entries = [json.loads(line) for line in proc.stderr().splitlines()]  # every line is one JSON object
    transitions = [e for e in entries if e.get("event") == "health_transition"]
    assert [e["component"] for e in transitions] == ["gpu.0.xid"]  # the healthy components say nothing
    (logged,) = transitions
    uuid = json.loads((NVML / "h200-busy.json").read_text())["devices"][0]["uuid"]["value"]
    assert (logged["old"], logged["new"], logged["action"], logged["level"]) == (
        None,
        "UNHEALTHY",
        "reboot_node",
        "warning",
    )
    assert logged["labels"] == {"gpu": "0", "uuid": uuid} == xid["labels"]
    assert "79" in logged["reason"] and logged["reason"] == xid["reason"]
    assert xid["since"] == logged["at"]


def test_a_hung_driver_is_reported_while_scrapes_keep_answering_and_threads_stay_flat(tmp_path: Path) -> None:
    proc, url = start(
        tmp_path,
        {
            "backend": "replay",
            "replay_file": str(NVML / "h200-hang.json"),
            "call_timeout": 0.3,
            "kmsg": False,
        },
    )
    try:
        deadline = time.monotonic() + 10
        while "driver_unresponsive" not in components(url).get("gpu.driver", {}).get("reason", ""):
            assert time.monotonic() < deadline, components(url)
            time.sleep(0.1)
        before = threads(proc.proc.pid)
        for _ in range(16):  # 4 s of 0.25 s intervals, every one of them against the hung driver
            response = get(f"{url}/metrics")
            assert response.status_code == 200 and b"gpuwarden_gpu_nvml_up 0.0" in response.content
            time.sleep(0.25)
        after = threads(proc.proc.pid)
        assert components(url)["gpu.driver"]["state"] == "UNHEALTHY"
    finally:
        proc.stop()
    assert after <= before + 2, f"threads grew from {before} to {after}: hung NVML calls pile up"


@pytest.mark.skipif(
    ctypes.util.find_library("nvidia-ml") is not None, reason="an NVIDIA driver is installed here"
)
def test_without_a_driver_the_agent_runs_and_says_the_gpu_collector_is_unsupported(tmp_path: Path) -> None:
    proc, url = start(tmp_path, {"backend": "nvml"})
    try:
        driver = components(url)["gpu.driver"]
        text = get(f"{url}/metrics").text
        assert proc.proc.poll() is None
    finally:
        proc.stop()
    assert driver["state"] == "UNKNOWN"
    assert driver["reason"] == "unsupported: no NVIDIA driver: libnvidia-ml.so.1 not found"
    assert "gpuwarden_gpu_nvml_up 0.0" in text
