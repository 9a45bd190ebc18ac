"""GPU stack checks: NVIDIA driver, CUDA driver vs runtime, GPU count, and the Python GPU libraries."""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from gpuwarden.collectors.doctor.findings import Finding, Status, failed, passed, skipped
from gpuwarden.collectors.doctor.gpu import NvmlFacts
from gpuwarden.collectors.doctor.settings import DoctorSettings
from gpuwarden.collectors.doctor.software import MIN_DRIVER_FOR_CUDA_MAJOR

COMPONENT_NAMES = {"torch": "PyTorch", "cuda_runtime": "CUDA runtime", "cudnn": "cuDNN", "nccl": "NCCL"}


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def check_driver(s: DoctorSettings, nvml: NvmlFacts | str) -> Finding:
    if isinstance(nvml, str):
        return skipped("nvidia_driver", nvml)
    have = _version(nvml.driver_version)
    if have is not None and have >= Version(s.driver_min_version):
        return passed("nvidia_driver", f"{nvml.driver_version} (minimum {s.driver_min_version})")
    return failed(
        "nvidia_driver",
        f"{nvml.driver_version} is below the minimum {s.driver_min_version}",
        "install a current data-center driver branch (apt install nvidia-driver-<branch>-server), reboot",
    )


def check_cuda(nvml: NvmlFacts | str, runtime: str | None) -> Finding:
    """The CUDA runtime in use must be one the driver runs: same major or older, and the driver at least the
    minimum of that major (minor-version compatibility)."""
    if isinstance(nvml, str):
        return skipped("cuda_driver", nvml)
    detail = f"driver supports CUDA {nvml.cuda_driver_version}"
    if runtime is None:
        return Finding("cuda_driver", Status.PASS, detail + "; no CUDA runtime found to compare")
    rt, drv = _version(runtime), _version(nvml.cuda_driver_version)
    if rt is None or drv is None:
        return failed(
            "cuda_driver", f"{detail}; cannot compare with runtime {runtime}", "check the installation"
        )
    minimum = MIN_DRIVER_FOR_CUDA_MAJOR.get(rt.major)
    too_old = minimum is not None and (_version(nvml.driver_version) or Version("0")) < Version(minimum)
    if rt.major > drv.major or too_old:
        need = f"driver >= {minimum}" if minimum else f"a driver for CUDA {rt.major}"
        return failed(
            "cuda_driver",
            f"{detail}, runtime is CUDA {runtime}: needs {need}",
            f"upgrade the driver to a branch for CUDA {rt.major}, or install a PyTorch build for CUDA "
            f"{nvml.cuda_driver_version}",
        )
    return passed("cuda_driver", f"{detail}; runtime CUDA {runtime} is compatible")


def check_gpu_count(expected: int, nvml: NvmlFacts | str) -> Finding:
    """`expected`: `collectors.gpu.expected_gpus` (0: no check)."""
    if not expected:
        return skipped("gpu_count", "collectors.gpu.expected_gpus is 0")
    if isinstance(nvml, str):
        return skipped("gpu_count", nvml)
    if nvml.gpu_count == expected:
        return passed("gpu_count", f"{nvml.gpu_count} GPU(s): {', '.join(sorted(set(nvml.gpu_names)))}")
    return failed(
        "gpu_count",
        f"NVML sees {nvml.gpu_count} GPU(s), expected {expected}",
        "nvidia-smi -L; a missing GPU fell off the bus (dmesg for Xid 79): drain the node and reseat or RMA",
    )


def check_software(s: DoctorSettings, versions: dict[str, str | None]) -> list[Finding]:
    out = []
    for component, label in COMPONENT_NAMES.items():
        found = versions.get(component)
        spec_text: str | None = getattr(s.software, component)
        name = f"software:{component}"
        if found is None:
            out.append(skipped(name, f"{label} is not installed as a Python package"))
        elif spec_text is None:
            out.append(passed(name, f"{label} {found} (no requirement configured)"))
        elif SpecifierSet(spec_text).contains(_local_stripped(found), prereleases=True):
            out.append(passed(name, f"{label} {found} satisfies {spec_text}"))
        else:
            out.append(
                failed(
                    name,
                    f"{label} {found} does not satisfy {spec_text}",
                    f"install a {label} version matching {spec_text} "
                    f"(collectors.doctor.software.{component})",
                )
            )
    return out


def _local_stripped(text: str) -> str:
    """'2.11.0+cu130' → '2.11.0': a local build tag must not make '>=2.3' fail."""
    return text.split("+", 1)[0]
