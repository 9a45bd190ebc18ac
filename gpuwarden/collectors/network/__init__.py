"""The `network` collector package: /proc/net/dev, /sys/class/net, /sys/class/infiniband and peer probes.

Parsing lives in `netdev`, `infiniband` and `peers` (pure, table-tested); `collector` reads and emits.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use (PEP 562), so that declaring the collector does not load its implementation.
_LAZY = {"NetworkCollector": "collector"}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
