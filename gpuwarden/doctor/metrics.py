"""The doctor's findings as metrics, for the node collector to export so alerts fire on drift.

Runs the cheap checks (no checksums) at most every `doctor.metrics_interval` seconds and replays the last
findings in between, so the node collector's cycle stays cheap even though NVML is initialised here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import Metric

from gpuwarden.catalog import Families, MetricSpec
from gpuwarden.collectors.gpu.nvml_thread import DriverUnresponsive, NvmlThread
from gpuwarden.doctor.findings import Finding, Status
from gpuwarden.doctor.gpu import NvmlFacts, read_nvml
from gpuwarden.doctor.run import DoctorInputs, run_checks

CATALOG = (
    MetricSpec(
        "gpuwarden_doctor_check_status",
        "gauge",
        "Doctor check result: 1 for the current status (pass, fail, skip, error), 0 for the others.",
        ("check", "status"),
    ),
    MetricSpec("gpuwarden_doctor_failed_checks", "gauge", "Number of doctor checks failing now."),
    MetricSpec(
        "gpuwarden_doctor_last_run_timestamp_seconds",
        "gauge",
        "When the doctor checks last ran.",
        unit="seconds",
    ),
)


class DoctorExporter:
    def __init__(
        self, inputs: DoctorInputs, nvml_deadline: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.inputs = inputs
        self.clock = clock
        self.last_run: float | None = None
        self.findings: list[Finding] = []
        # A driver stuck in D state never returns from NVML: ask on the GPU collector's kind of NVML thread,
        # under a deadline, so the node collector that embeds this keeps its own series through the hang.
        self.nvml_deadline = nvml_deadline
        self.nvml_thread = NvmlThread("doctor-nvml")

    def close(self) -> None:
        self.nvml_thread.stop()

    def _nvml(self) -> NvmlFacts | str:
        try:
            return self.nvml_thread.run("doctor", lambda: read_nvml(self.inputs.nvml), self.nvml_deadline)
        except DriverUnresponsive as err:
            return f"skipped: {err}"

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        if self.last_run is None or now - self.last_run >= self.inputs.settings.metrics_interval:
            self.findings = run_checks(self.inputs, self._nvml())
            self.last_run = now
        fams = Families(CATALOG)
        for f in self.findings:
            for status in Status:
                fams.add(
                    "gpuwarden_doctor_check_status", f.status == status, check=f.check, status=str(status)
                )
        fams.add("gpuwarden_doctor_failed_checks", sum(f.status == Status.FAIL for f in self.findings))
        fams.add("gpuwarden_doctor_last_run_timestamp_seconds", self.last_run)
        yield from fams
