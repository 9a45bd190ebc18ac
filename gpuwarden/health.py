"""Health is a value, never an exception.

Every check in the agent reports a `HealthResult`; `/health` and `gpuwarden_health_state` read them from
one store. States and actions follow gpud's vocabulary (Healthy / Degraded / Unhealthy, plus Unknown for
"could not tell") so that on-call engineers see the same words on every node.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum


class State(StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"  # worth an alert, does not hurt users' workload yet
    UNHEALTHY = "UNHEALTHY"  # users' workload is or will be hurt; an action is suggested
    UNKNOWN = "UNKNOWN"  # the check could not decide (probe failed, data missing)


# Ordering used to fold several results into one verdict: the worst wins.
SEVERITY = {State.HEALTHY: 0, State.UNKNOWN: 1, State.DEGRADED: 2, State.UNHEALTHY: 3}


class Action(StrEnum):
    """What an operator (or a playbook) should do about a result."""

    NONE = "none"
    RESTART_WORKER = "restart_worker"
    RESET_GPU = "reset_gpu"
    REBOOT_NODE = "reboot_node"
    INSPECT_HARDWARE = "inspect_hardware"
    CHECK_WORKLOAD = "check_workload"
    FIX_CONFIG = "fix_config"
    CHECK_NETWORK = "check_network"
    FREE_RESOURCES = "free_resources"
    REDEPLOY_MODEL = "redeploy_model"  # model/plan files fail their checksum or cannot load (engine probe)


@dataclass(frozen=True)
class HealthResult:
    component: str
    state: State
    reason: str
    suggested_action: Action = Action.NONE
    timestamp: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["state"] = str(self.state)
        d["suggested_action"] = str(self.suggested_action)
        return d


def worst(states: list[State]) -> State:
    """The most severe state in `states`; HEALTHY when there is nothing to judge."""
    return max(states, key=SEVERITY.__getitem__, default=State.HEALTHY)
