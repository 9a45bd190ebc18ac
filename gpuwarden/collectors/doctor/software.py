"""Versions of PyTorch, the CUDA runtime it was built with, cuDNN and NCCL, read without importing torch.

Importing torch costs seconds and initialises CUDA; the doctor must stay cheap. Versions come from the
installed distributions' metadata (`nvidia-cudnn-cu12`, `nvidia-nccl-cu12`, ... as PyTorch's wheels pull
them in) and from torch/version.py, which the build writes with the CUDA runtime version in it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re

# Distribution names per component; the suffix (-cu11, -cu12, -cu13) follows the CUDA major version.
DISTRIBUTIONS = {
    "torch": re.compile(r"^torch$"),
    "cuda_runtime": re.compile(r"^nvidia-cuda-runtime(-cu\d+)?$"),
    "cudnn": re.compile(r"^nvidia-cudnn(-cu\d+)?$"),
    "nccl": re.compile(r"^nvidia-nccl(-cu\d+)?$"),
}


def _torch_cuda_runtime() -> str | None:
    """torch.version.cuda, read from the file: `cuda: Optional[str] = '12.1'` (None for CPU builds)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return None
    try:
        with open(os.path.join(os.path.dirname(spec.origin), "version.py"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"^cuda\b[^=\n]*=\s*['\"]([\d.]+)['\"]", text, re.MULTILINE)
    return m.group(1) if m else None


def detect_versions() -> dict[str, str | None]:
    """{component: version or None when not installed} for torch, cuda_runtime, cudnn and nccl."""
    found: dict[str, str | None] = dict.fromkeys(DISTRIBUTIONS)
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        for component, pattern in DISTRIBUTIONS.items():
            if found[component] is None and pattern.match(name):
                found[component] = dist.version
    if found["torch"] is not None:
        # The runtime torch was compiled against is what matters; the wheel may not ship it separately.
        found["cuda_runtime"] = _torch_cuda_runtime() or found["cuda_runtime"]
    return found


# Minimum driver per CUDA major version under minor-version compatibility: NVIDIA CUDA Toolkit Release
# Notes, table "CUDA Toolkit and Minimum Required Driver Version for CUDA Minor Version Compatibility".
MIN_DRIVER_FOR_CUDA_MAJOR = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
