"""`collectors.doctor`: what the preflight requires of a node, and how often the agent re-runs it.

Facts that another section already states are read from there, never repeated here: the GPU count is
`collectors.gpu.expected_gpus`, the free space a volume must keep is a `collectors.node.disk_paths` entry's
`min_free`, and the links that must be up are `collectors.network`'s expectations.
"""

from __future__ import annotations

from typing import Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import ByteSize, Field, field_validator

from gpuwarden.agent.registry import CollectorSettings
from gpuwarden.config_base import StrictModel

ThpMode = Literal["always", "madvise", "never"]


class SoftwareRequirements(StrictModel):
    """PEP 440 version specifiers; a package that is not installed is skipped, not failed."""

    torch: str | None = Field(None, description='e.g. ">=2.3,<2.6"')
    cuda_runtime: str | None = Field(None, description='CUDA runtime PyTorch was built with, e.g. ">=12.1"')
    cudnn: str | None = Field(None, description='e.g. ">=9.1"')
    nccl: str | None = Field(None, description='e.g. ">=2.21"')

    @field_validator("torch", "cuda_runtime", "cudnn", "nccl")
    @classmethod
    def _specifier(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                SpecifierSet(v)
            except InvalidSpecifier:
                raise ValueError(f"not a version specifier: {v!r} (write e.g. '>=2.3,<2.6')") from None
        return v


class DoctorSettings(CollectorSettings):
    # Five minutes: the doctor watches for drift (an OS update flipping THP back, hugepages lost after a
    # reboot), not for faults; the collectors that watch the same signals live run every few seconds.
    interval: float = Field(300.0, gt=0, description="seconds between two doctor runs in the agent")
    thp_allowed: list[ThpMode] = Field(
        default_factory=lambda: list[ThpMode](["never"]), description="transparent huge page modes that pass"
    )
    hugepages: int | None = Field(
        None, ge=0, description="HugePages_Total the node must reserve; unset skips"
    )
    # NVIDIA's data-center driver 470.57.02 is the first R470 production branch release; older branches
    # are out of support (docs.nvidia.com/datacenter/tesla/drivers).
    driver_min_version: str = Field("470.57.02", description="lowest NVIDIA driver version that passes")
    model_size: ByteSize | None = Field(None, description='model parameter bytes, e.g. "140GB"; unset skips')
    # Loading a checkpoint stages it in host memory (page cache plus the framework's copy) before it moves
    # to the GPUs; 1.5x the parameter bytes is the deployment guides' floor for doing that without OOM.
    memory_factor: float = Field(1.5, gt=0, description="host memory must be at least this times model_size")
    software: SoftwareRequirements = Field(
        default_factory=SoftwareRequirements, description="version compatibility matrix (PEP 440 specifiers)"
    )
    checksum_manifest: str | None = Field(
        None,
        description="sha256sum/md5sum-style manifest of the model weights, paths relative to it; checked by "
        "`gpuwarden doctor` only (hashing the weights is no periodic probe)",
    )

    @field_validator("driver_min_version")
    @classmethod
    def _version(cls, v: str) -> str:
        try:
            Version(v)
        except InvalidVersion:
            raise ValueError(f"not a version: {v!r}") from None
        return v
