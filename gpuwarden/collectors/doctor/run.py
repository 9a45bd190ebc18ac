"""Run every doctor check and collect the findings; a check that raises becomes an ERROR row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gpuwarden.collectors.doctor import host, stack
from gpuwarden.collectors.doctor.findings import Finding, Status, failed, passed, skipped
from gpuwarden.collectors.doctor.gpu import NvmlFacts, read_nvml
from gpuwarden.collectors.doctor.host import Volume
from gpuwarden.collectors.doctor.settings import DoctorSettings
from gpuwarden.collectors.doctor.software import detect_versions
from gpuwarden.collectors.gpu.backend import Backend
from gpuwarden.modelfiles import ManifestError, verify_manifest
from gpuwarden.paths import Paths
from gpuwarden.readers.host import read_meminfo


@dataclass(frozen=True)
class DoctorInputs:
    settings: DoctorSettings
    paths: Paths
    expected_interfaces: tuple[str, ...] = ()
    expected_ib_ports: int = 0
    expected_gpus: int = 0  # 0: no check
    volumes: tuple[Volume, ...] = ()
    nvml: Backend | None = None  # NvmlBackend (default) or a ReplayBackend on a recording in tests
    versions: Callable[[], dict[str, str | None]] = detect_versions
    checksums: bool = True  # the agent's runs skip them: hashing 100 GB every few minutes is no probe
    progress: bool = False


def _guard(name: str, check: Callable[[], Finding | list[Finding]]) -> list[Finding]:
    try:
        result = check()
    except Exception as err:  # a bug or an odd host must cost one row, not the whole preflight
        return [Finding(name, Status.ERROR, f"check crashed: {type(err).__name__}: {err}")]
    return result if isinstance(result, list) else [result]


def check_checksums(inputs: DoctorInputs) -> Finding:
    manifest = inputs.settings.checksum_manifest
    if manifest is None:
        return skipped("model_checksums", "collectors.doctor.checksum_manifest is not set")
    if not inputs.checksums:
        return skipped("model_checksums", "not run here (run gpuwarden doctor)")
    path = inputs.paths.root(manifest)
    try:
        count, problems = verify_manifest(path, show_progress=inputs.progress)
    except ManifestError as err:
        return failed(
            "model_checksums", f"manifest {manifest}: {err}", "regenerate it: sha256sum * > manifest"
        )
    if not problems:
        return passed("model_checksums", f"{count} file(s) match {manifest}")
    listed = ", ".join(f"{p.path} ({p.problem})" for p in problems[:5])
    more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
    return failed(
        "model_checksums",
        f"{len(problems)} of {count} file(s) bad: {listed}{more}",
        "re-download the listed files from the model registry and run gpuwarden doctor again",
    )


def run_checks(inputs: DoctorInputs, nvml: NvmlFacts | str | None = None) -> list[Finding]:
    """Every check; `nvml` is what NVML answered when the caller asked already (under its own deadline)."""
    s, paths = inputs.settings, inputs.paths
    meminfo = read_meminfo(paths)
    if nvml is None:
        nvml = read_nvml(inputs.nvml)
    versions: dict[str, str | None] = {}

    def software() -> list[Finding]:
        versions.update(inputs.versions())
        return stack.check_software(s, versions)

    findings: list[Finding] = []
    findings += _guard("transparent_hugepages", lambda: host.check_thp(s, paths))
    findings += _guard("hugepages", lambda: host.check_hugepages(s, meminfo))
    findings += _guard("host_memory", lambda: host.check_memory(s, meminfo))
    findings += _guard("disk_space", lambda: host.check_volumes(inputs.volumes, paths))
    findings += _guard("nvidia_driver", lambda: stack.check_driver(s, nvml))
    findings += _guard("gpu_count", lambda: stack.check_gpu_count(inputs.expected_gpus, nvml))
    findings += _guard("software", software)
    findings += _guard("cuda_driver", lambda: stack.check_cuda(nvml, versions.get("cuda_runtime")))
    findings += _guard(
        "network_interfaces", lambda: host.check_interfaces(list(inputs.expected_interfaces), paths)
    )
    findings += _guard("infiniband_ports", lambda: host.check_infiniband(inputs.expected_ib_ports, paths))
    findings += _guard("model_checksums", lambda: check_checksums(inputs))
    return findings
