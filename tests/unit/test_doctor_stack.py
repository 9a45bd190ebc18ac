"""GPU-stack checks: NVML answers replayed from a recording on an H200 node, and the version matrix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpuwarden.collectors.doctor.findings import Status
from gpuwarden.collectors.doctor.gpu import NvmlFacts, cuda_version_text, read_nvml
from gpuwarden.collectors.doctor.settings import DoctorSettings
from gpuwarden.collectors.doctor.software import detect_versions
from gpuwarden.collectors.doctor.stack import check_cuda, check_driver, check_gpu_count, check_software
from gpuwarden.collectors.gpu.replay import ReplayBackend

NVML = Path(__file__).parent.parent / "fixtures" / "nvml"
# What detect_versions() read on the H200 node these NVML recordings come from.
H200_VERSIONS = {"torch": "2.11.0", "cuda_runtime": "13.0", "cudnn": "9.19.0.56", "nccl": "2.28.9"}


def h200() -> NvmlFacts:
    facts = read_nvml(ReplayBackend.from_file(str(NVML / "h200-idle.json")))
    assert isinstance(facts, NvmlFacts)
    return facts


def test_the_h200_recording_replays_to_driver_cuda_and_gpu_count() -> None:
    facts = h200()
    assert facts == NvmlFacts("580.159.04", "13.0", 1, ("NVIDIA H200",))
    system = json.loads((NVML / "h200-idle.json").read_text())["system"]
    assert facts.driver_version == system["driver_version"]
    assert facts.cuda_driver_version == cuda_version_text(system["cuda_driver_version"])


def test_without_a_driver_every_gpu_check_is_skipped_with_the_reason() -> None:
    recording = json.loads((NVML / "h200-idle.json").read_text())
    no_driver = {**recording, "script": {"init_error": "no NVIDIA driver: libnvidia-ml.so.1 not found"}}
    reason = read_nvml(ReplayBackend(no_driver))
    assert reason == "skipped: no NVIDIA driver: libnvidia-ml.so.1 not found"
    s = DoctorSettings()
    for finding in (check_driver(s, reason), check_gpu_count(8, reason), check_cuda(reason, "12.4")):
        assert finding.status == Status.SKIP and finding.detail == reason


@pytest.mark.parametrize(("minimum", "status"), [("470.57.02", Status.PASS), ("590.10", Status.FAIL)])
def test_the_driver_is_compared_as_a_version_not_a_string(minimum: str, status: Status) -> None:
    finding = check_driver(DoctorSettings(driver_min_version=minimum), h200())
    assert finding.status == status
    if status == Status.FAIL:
        assert finding.detail == f"580.159.04 is below the minimum {minimum}" and finding.fix


def test_gpu_count_fails_when_a_gpu_fell_off_the_bus() -> None:
    finding = check_gpu_count(8, h200())
    assert finding.status == Status.FAIL
    assert finding.detail == "NVML sees 1 GPU(s), expected 8"
    assert check_gpu_count(1, h200()).status == Status.PASS


@pytest.mark.parametrize(
    ("runtime", "status"),
    [
        ("13.0", Status.PASS),
        ("12.4", Status.PASS),
        ("11.8", Status.PASS),
        ("13.1", Status.PASS),
        ("14.0", Status.FAIL),
    ],
)
def test_a_cuda_runtime_newer_than_the_driver_major_fails(runtime: str, status: Status) -> None:
    assert check_cuda(h200(), runtime).status == status


def test_a_cuda_12_runtime_on_a_driver_below_525_fails_minor_version_compatibility() -> None:
    old = NvmlFacts("520.61.05", "12.0", 8, ("NVIDIA H100 80GB HBM3",))
    finding = check_cuda(old, "12.4")
    assert finding.status == Status.FAIL
    assert "needs driver >= 525.60.13" in finding.detail


def test_the_software_matrix_passes_skips_and_fails_per_component() -> None:
    s = DoctorSettings.model_validate(
        {"software": {"torch": ">=2.3,<2.12", "cudnn": ">=9.20", "nccl": ">=2.18"}}
    )
    rows = {f.check: f for f in check_software(s, {**H200_VERSIONS, "nccl": None})}
    assert rows["software:torch"].status == Status.PASS
    assert rows["software:cuda_runtime"].status == Status.PASS  # no requirement: reported, not judged
    assert rows["software:cudnn"].status == Status.FAIL
    assert rows["software:cudnn"].detail == "cuDNN 9.19.0.56 does not satisfy >=9.20"
    assert rows["software:nccl"].status == Status.SKIP


def test_a_local_build_tag_does_not_fail_a_plain_requirement() -> None:
    s = DoctorSettings.model_validate({"software": {"torch": ">=2.3"}})
    [row] = [f for f in check_software(s, {"torch": "2.11.0+cu130"}) if f.check == "software:torch"]
    assert row.status == Status.PASS


def test_detect_versions_reports_none_for_what_is_not_installed_here() -> None:
    versions = detect_versions()
    assert set(versions) == {"torch", "cuda_runtime", "cudnn", "nccl"}
    try:
        import torch  # noqa: F401
    except ImportError:
        assert versions["torch"] is None


def test_nvml_encodes_cuda_versions_as_major_thousands_plus_minor_tens() -> None:
    assert cuda_version_text(12040) == "12.4"
    assert cuda_version_text(13000) == "13.0"
