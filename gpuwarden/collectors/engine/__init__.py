"""The engine probe: canary inferences with golden answers against the node's inference engine.

Backends: `http` (KServe v2 / Triton, OpenAI-compatible), `onnxruntime`, `tensorrt` (full or lean runtime),
`torch` (PyTorch with CUDA).
See docs/engine.md.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use (PEP 562), so that declaring the collector does not load its implementation.
_LAZY = {"EngineCollector": "collector"}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
