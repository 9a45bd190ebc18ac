"""The doctor's findings exported by the node collector, and promtool's verdict on our expositions."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gpuwarden.agent.context import collector_context
from gpuwarden.catalog import catalog_names
from gpuwarden.collectors.gpu.replay import ReplayBackend
from gpuwarden.collectors.node import NodeCollector
from gpuwarden.config import from_mapping
from gpuwarden.doctor import metrics as doctor_metrics
from gpuwarden.doctor.run import DoctorInputs
from gpuwarden.paths import Paths
from tests.golden import exposition, split

FIXTURES = Path(__file__).parent.parent / "fixtures"
BAD = FIXTURES / "doctor" / "thp_always_low_memory_corrupt"


def node_with_doctor(**doctor: Any) -> NodeCollector:
    cfg = from_mapping(
        {
            "paths": {"procfs": str(BAD / "proc"), "sysfs": str(BAD / "sys"), "rootfs": str(BAD / "rootfs")},
            "collectors": {"node": {"disk_paths": []}},
            "doctor": {"export_metrics": True, "model_size": "140GB", **doctor},
        }
    )
    return NodeCollector(cfg.collector_settings("node"), collector_context(cfg, logging.getLogger("t")))


def status_of(metrics: list[Any]) -> dict[str, str]:
    return {
        s.labels["check"]: s.labels["status"]
        for m in metrics
        if m.name == "gpuwarden_doctor_check_status"
        for s in m.samples
        if s.value == 1
    }


def test_the_node_collector_exports_failing_doctor_checks_when_asked() -> None:
    metrics, _ = split(node_with_doctor(checksum_manifest="/models/llama-3-70b/SHA256SUMS").collect())
    status = status_of(metrics)
    assert status["transparent_hugepages"] == "fail"
    assert status["host_memory"] == "fail"
    # Hashing model weights is the command's job, never the metrics path's.
    assert status["model_checksums"] == "skip"
    failed = [m for m in metrics if m.name == "gpuwarden_doctor_failed_checks"]
    assert failed[0].samples[0].value == 2
    assert {m.name for m in metrics if m.name.startswith("gpuwarden_doctor")} == catalog_names(
        doctor_metrics.CATALOG
    )


def test_without_export_metrics_the_node_collector_emits_no_doctor_series() -> None:
    metrics, _ = split(node_with_doctor(export_metrics=False).collect())
    assert not [m for m in metrics if m.name.startswith("gpuwarden_doctor")]


def test_doctor_checks_rerun_only_after_the_metrics_interval() -> None:
    runs = []
    now = [0.0]

    def versions() -> dict[str, str | None]:
        runs.append(now[0])  # detect_versions runs once per doctor run: count the runs with it
        return {}

    cfg = from_mapping({"doctor": {"metrics_interval": 300}})
    inputs = DoctorInputs(settings=cfg.doctor, paths=Paths(procfs=str(BAD / "proc")), versions=versions)
    exporter = doctor_metrics.DoctorExporter(inputs, nvml_deadline=5.0, clock=lambda: now[0])
    for t in (0.0, 15.0, 299.0, 300.0, 315.0):
        now[0] = t
        list(exporter.collect())
    assert runs == [0.0, 300.0]


def test_a_hung_driver_costs_the_doctor_its_gpu_rows_not_the_node_cycle() -> None:
    recording = json.loads((FIXTURES / "nvml" / "h200-idle.json").read_text())
    backend = ReplayBackend({**recording, "script": {"devices": [{"name": {"hang": True}}]}})
    cfg = from_mapping({"doctor": {"gpu_count": 1}})
    inputs = DoctorInputs(
        settings=cfg.doctor, paths=Paths(procfs=str(BAD / "proc"), sysfs=str(BAD / "sys")), nvml=backend
    )
    exporter = doctor_metrics.DoctorExporter(inputs, nvml_deadline=0.2)
    try:
        start = time.monotonic()
        status = status_of(list(exporter.collect()))
        assert time.monotonic() - start < 5
        assert status["nvidia_driver"] == "skip" and status["gpu_count"] == "skip"
        assert status["transparent_hugepages"] == "fail"  # the host rows still ran
        rows = {f.check: f for f in exporter.findings}
        assert "has not returned" in rows["nvidia_driver"].detail
    finally:
        backend.shutdown()  # the hung replay call returns
        exporter.close()


@pytest.mark.integration
def test_promtool_finds_nothing_to_lint_in_the_network_and_doctor_expositions() -> None:
    assert shutil.which("promtool"), "promtool is missing: `make test` installs Debian's prometheus package"
    texts = [
        (FIXTURES / "network" / "infiniband.prom").read_text(),
        (FIXTURES / "network" / "counters_wrap.prom").read_text(),
        exposition(split(node_with_doctor().collect())[0]),
    ]
    for text in texts:
        proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr
