"""Fleet coordination on ZooKeeper (kazoo): registration, the remediation budget, leader election.

Names are imported on first use (PEP 562): the config's fleet settings must not load kazoo into an agent
whose fleet section is disabled (bench/footprint.py).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "AgentRecord": "registration",
    "BudgetDenied": "budget",
    "BudgetSettings": "settings",
    "FleetBudget": "budget",
    "FleetClient": "client",
    "FleetLeader": "election",
    "FleetMember": "member",
    "FleetSettings": "settings",
    "FleetUnavailable": "client",
    "Lease": "budget",
    "Registration": "registration",
    "list_agents": "registration",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
