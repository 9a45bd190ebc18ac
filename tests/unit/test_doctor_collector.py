"""The `doctor` collector: its findings as health results and metrics, and promtool's verdict on them."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gpuwarden.agent.context import build_collector, collector_context
from gpuwarden.agent.registry import REGISTRY
from gpuwarden.catalog import catalog_names
from gpuwarden.collectors.doctor import collector as doctor
from gpuwarden.collectors.doctor.findings import Finding, Status
from gpuwarden.collectors.gpu.replay import ReplayBackend
from gpuwarden.config import AgentConfig, from_mapping
from gpuwarden.health import Action, HealthResult, State
from gpuwarden.paths import Paths
from tests.golden import exposition, split

FIXTURES = Path(__file__).parent.parent / "fixtures"
BAD = FIXTURES / "doctor" / "thp_always_low_memory_corrupt"


def config(**doctor_settings: Any) -> AgentConfig:
    return from_mapping(
        {
            "paths": {"procfs": str(BAD / "proc"), "sysfs": str(BAD / "sys"), "rootfs": str(BAD / "rootfs")},
            "collectors": {"doctor": {"model_size": "140GB", **doctor_settings}},
        }
    )


def status_of(metrics: list[Any]) -> dict[str, str]:
    return {
        s.labels["check"]: s.labels["status"]
        for m in metrics
        if m.name == "gpuwarden_doctor_check_status"
        for s in m.samples
        if s.value == 1
    }


def test_the_registered_doctor_turns_failing_checks_into_degraded_health_with_their_fix() -> None:
    cfg = config(checksum_manifest="/models/llama-3-70b/SHA256SUMS")
    collector = build_collector("doctor", cfg, logging.getLogger("t"))
    try:
        metrics, health = split(collector.collect())
    finally:
        collector.close()
    by_name = {h.component: h for h in health}
    thp = by_name["doctor.transparent_hugepages"]
    assert (thp.state, thp.suggested_action, dict(thp.labels)) == (
        State.DEGRADED,
        Action.FIX_CONFIG,
        {"check": "transparent_hugepages"},
    )
    assert thp.reason.startswith("mode always, allowed: never; fix: echo never > ")
    assert by_name["doctor.host_memory"].state is State.DEGRADED
    # A skipped check is no fact about the node: no health result (checksums are the command's job).
    assert "doctor.model_checksums" not in by_name and "doctor.hugepages" not in by_name
    status = status_of(metrics)
    assert status["transparent_hugepages"] == "fail" and status["model_checksums"] == "skip"
    failed = [m for m in metrics if m.name == "gpuwarden_doctor_failed_checks"]
    assert failed[0].samples[0].value == 2
    assert {m.name for m in metrics} == catalog_names(doctor.CATALOG)


@pytest.mark.parametrize(
    ("finding", "component", "state", "action", "labels"),
    [
        (
            Finding("hugepages", Status.PASS, "1024 reserved"),
            "doctor.hugepages",
            State.HEALTHY,
            Action.NONE,
            {},
        ),
        (
            Finding("disk_space:/models", Status.FAIL, "1.0 GiB free, need 50.0 GiB", "free space"),
            "doctor.disk_space./models",
            State.DEGRADED,
            Action.FREE_RESOURCES,
            {"path": "/models"},
        ),
        (
            Finding("software:torch", Status.FAIL, "PyTorch 2.1 does not satisfy >=2.3", "install"),
            "doctor.software.torch",
            State.DEGRADED,
            Action.FIX_CONFIG,
            {"package": "torch"},
        ),
        (
            Finding("gpu_count", Status.FAIL, "NVML sees 7 GPU(s), expected 8", "nvidia-smi -L"),
            "doctor.gpu_count",
            State.DEGRADED,
            Action.REBOOT_NODE,
            {},
        ),
        (
            Finding("software", Status.ERROR, "check crashed: PermissionError"),
            "doctor.software",
            State.UNKNOWN,
            Action.NONE,
            {},
        ),
    ],
)
def test_each_finding_maps_to_one_health_result(
    finding: Finding, component: str, state: State, action: Action, labels: dict[str, str]
) -> None:
    result = doctor.finding_health(finding)
    assert isinstance(result, HealthResult)
    assert (result.component, result.state, result.suggested_action) == (component, state, action)
    assert dict(result.labels) == {"check": finding.check.partition(":")[0], **labels}


def test_a_skipped_check_has_no_health_result() -> None:
    assert doctor.finding_health(Finding("hugepages", Status.SKIP, "not set")) is None


def test_the_doctor_is_a_collector_of_its_own_every_five_minutes_and_the_node_collector_has_no_doctor() -> (
    None
):
    cfg = AgentConfig()
    assert "doctor" in REGISTRY and cfg.collector_settings("doctor").interval == 300
    node = build_collector("node", config(), logging.getLogger("t"))
    metrics, _ = split(node.collect())
    assert not [m for m in metrics if m.name.startswith("gpuwarden_doctor")]


def test_a_hung_driver_costs_the_doctor_its_gpu_rows_not_its_run() -> None:
    recording = json.loads((FIXTURES / "nvml" / "h200-idle.json").read_text())
    backend = ReplayBackend({**recording, "script": {"devices": [{"name": {"hang": True}}]}})
    cfg = from_mapping({"collectors": {"gpu": {"expected_gpus": 1}, "doctor": {"timeout": 0.4}}})
    paths = Paths(procfs=str(BAD / "proc"), sysfs=str(BAD / "sys"))
    collector = doctor.DoctorCollector(
        cfg.collector_settings("doctor"),
        replace(collector_context(cfg, logging.getLogger("t")), paths=paths),
        nvml=backend,
    )
    try:
        start = time.monotonic()
        metrics, health = split(collector.collect())
        assert time.monotonic() - start < 5
        status = status_of(metrics)
        assert status["nvidia_driver"] == "skip" and status["gpu_count"] == "skip"
        assert status["transparent_hugepages"] == "fail"  # the host rows still ran
        assert "doctor.nvidia_driver" not in {h.component for h in health}
    finally:
        backend.shutdown()  # the hung replay call returns
        collector.close()


@pytest.mark.integration
def test_promtool_finds_nothing_to_lint_in_the_network_and_doctor_expositions() -> None:
    assert shutil.which("promtool"), "promtool is missing: `make test` installs Debian's prometheus package"
    collector = build_collector("doctor", config(), logging.getLogger("t"))
    try:
        doctor_text = exposition(split(collector.collect())[0])
    finally:
        collector.close()
    texts = [
        (FIXTURES / "network" / "infiniband.prom").read_text(),
        (FIXTURES / "network" / "counters_wrap.prom").read_text(),
        doctor_text,
    ]
    for text in texts:
        proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr
