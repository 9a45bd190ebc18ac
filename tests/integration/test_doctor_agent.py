"""The real agent with the doctor collector: a THP `madvise` drift shows in /health and in the metrics."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.agent_process import AgentProcess, free_port, get, only_collectors

pytestmark = pytest.mark.integration

HEALTHY = Path(__file__).resolve().parents[1] / "fixtures" / "doctor" / "healthy"


def test_a_thp_madvise_node_is_degraded_in_health_with_the_fix_and_the_doctor_reports_success(
    tmp_path: Path,
) -> None:
    root = tmp_path / "host"
    shutil.copytree(HEALTHY, root)
    # What Ubuntu ships: madvise, while the doctor's default allows only never.
    (root / "sys/kernel/mm/transparent_hugepage/enabled").write_text("always [madvise] never\n")
    port = free_port()
    config = {
        "agent": {"listen": f"127.0.0.1:{port}"},
        "paths": {"procfs": str(root / "proc"), "sysfs": str(root / "sys"), "rootfs": str(root / "rootfs")},
        "collectors": only_collectors({"doctor": {"interval": 300}}),
    }
    proc = AgentProcess(tmp_path, config)
    try:
        proc.wait_message("READY=1")
        health = get(f"http://127.0.0.1:{port}/health").json()
        metrics = get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        proc.stop()
    thp = {c["component"]: c for c in health["components"]}["doctor.transparent_hugepages"]
    assert (thp["state"], thp["suggested_action"], thp["labels"]) == (
        "DEGRADED",
        "fix_config",
        {"check": "transparent_hugepages"},
    )
    assert thp["reason"].startswith("mode madvise, allowed: never; fix: echo never > ")
    assert health["status"] == "DEGRADED"
    assert 'gpuwarden_collector_success{collector="doctor"} 1.0' in metrics
    assert 'gpuwarden_doctor_check_status{check="transparent_hugepages",status="fail"} 1.0' in metrics
    assert "health doctor.transparent_hugepages: none -> DEGRADED, action fix_config" in proc.stderr()
