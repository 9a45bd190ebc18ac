"""The `doctor` collector: the preflight checks re-run by the agent, so drift reaches /health and alerts.

Runs every check but the checksums (hashing 100 GB every few minutes is no probe) on the runner's
interval and deadline. Each finding becomes a health result `doctor.<check>` (label `check`, plus `path`
or `package` for the checks that have a subject) and a `gpuwarden_doctor_check_status` row:

- pass → HEALTHY; fail → DEGRADED with the fix in the reason: the node drifted from what the preflight
  requires. The collectors that watch the same signals live (`gpu.count`, `node.disk`, `network.*`) say
  UNHEALTHY when users are hurt; the doctor says the node is no longer fit to start serving.
- error (the check crashed) → UNKNOWN.
- skip (not configured, not applicable, or NVML could not be asked) → no health result: it is no fact
  about the node. A hung driver is `gpu.driver`'s verdict, not the doctor's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from gpuwarden.agent.registry import CollectorContext, Item, register
from gpuwarden.catalog import Families, MetricSpec
from gpuwarden.collectors.doctor.findings import Finding, Status
from gpuwarden.collectors.doctor.gpu import NvmlFacts, read_nvml
from gpuwarden.collectors.doctor.host import Volume
from gpuwarden.collectors.doctor.run import DoctorInputs, run_checks
from gpuwarden.collectors.doctor.settings import DoctorSettings
from gpuwarden.collectors.gpu.backend import Backend
from gpuwarden.collectors.gpu.nvml_thread import DriverUnresponsive, NvmlThread
from gpuwarden.health import Action, HealthResult, State

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

# What a failing check asks for; a check that is not listed asks to fix the node's configuration.
ACTIONS = {
    "disk_space": Action.FREE_RESOURCES,
    "gpu_count": Action.REBOOT_NODE,  # a GPU fell off the bus: only a reboot (or a reseat) brings it back
    "network_interfaces": Action.CHECK_NETWORK,
    "infiniband_ports": Action.CHECK_NETWORK,
    "model_checksums": Action.REDEPLOY_MODEL,
}
# The label that names the subject of `check:subject` rows (`disk_space:/models`, `software:torch`).
SUBJECT_LABELS = {"disk_space": "path", "software": "package"}


def finding_health(f: Finding) -> HealthResult | None:
    """The finding as a health result; None for a skipped check."""
    check, _, subject = f.check.partition(":")
    labels = {"check": check}
    if subject:
        labels[SUBJECT_LABELS.get(check, "subject")] = subject
    component = f"doctor.{check}" + (f".{subject}" if subject else "")
    if f.status is Status.PASS:
        return HealthResult(component, State.HEALTHY, f.detail, labels=labels)
    if f.status is Status.FAIL:
        reason = f"{f.detail}; fix: {f.fix}" if f.fix else f.detail
        action = ACTIONS.get(check, Action.FIX_CONFIG)
        return HealthResult(component, State.DEGRADED, reason, action, labels=labels)
    if f.status is Status.ERROR:
        return HealthResult(component, State.UNKNOWN, f.detail, labels=labels)
    return None


@register("doctor", DoctorSettings)
class DoctorCollector:
    def __init__(self, settings: DoctorSettings, ctx: CollectorContext, nvml: Backend | None = None) -> None:
        """`nvml`: the NVML backend to ask (a `ReplayBackend` in tests); by default the real driver."""
        expected = ctx.expected
        self.inputs = DoctorInputs(
            settings=settings,
            paths=ctx.paths,
            expected_interfaces=expected.interfaces,
            expected_ib_ports=expected.ib_ports,
            expected_gpus=expected.gpus,
            volumes=tuple(Volume(path, min_free) for path, min_free in expected.volumes),
            nvml=nvml,
            checksums=False,
        )
        # A driver stuck in D state never returns from NVML: ask on an NVML thread under half the
        # collector's deadline, so a hang costs the GPU rows (skipped, with the reason) and not the run.
        self.nvml_deadline = settings.timeout / 2
        self.nvml_thread = NvmlThread("doctor-nvml")

    def close(self) -> None:
        self.nvml_thread.stop()

    def _nvml(self) -> NvmlFacts | str:
        try:
            return self.nvml_thread.run("doctor", lambda: read_nvml(self.inputs.nvml), self.nvml_deadline)
        except DriverUnresponsive as err:
            return f"skipped: {err}"

    def collect(self) -> Iterator[Item]:
        findings = run_checks(self.inputs, self._nvml())
        fams = Families(CATALOG)
        for f in findings:
            for status in Status:
                fams.add(
                    "gpuwarden_doctor_check_status", f.status == status, check=f.check, status=str(status)
                )
        fams.add("gpuwarden_doctor_failed_checks", sum(f.status == Status.FAIL for f in findings))
        fams.add("gpuwarden_doctor_last_run_timestamp_seconds", time.time())
        for f in findings:
            result = finding_health(f)
            if result is not None:
                yield result
        yield from fams
