"""Health is a value, never an exception.

Every check in the agent reports a `HealthResult`; `/health` and `gpuwarden_health_state` read them from
one store, which also turns changes into `Transition`s for subscribers (the remediation engine). States
and actions follow gpud's vocabulary (Healthy / Degraded / Unhealthy, plus Unknown for "could not tell")
so that on-call engineers see the same words on every node.

Component names are one dotted hierarchy, `<collector>.<subject>.<aspect>` where a result has a subject
(`gpu.0.memory`, `network.peer.zk1`, `zookeeper.server.10.0.0.1:2181`, `doctor.transparent_hugepages`) and
`<collector>.<aspect>` where the whole node is the subject (`gpu.driver`, `node.memory`). The name is the
key; `labels` carry the subject as data (gpu, uuid, peer, server...) so that nobody parses names.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class State(StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"  # worth an alert, does not hurt users' workload yet
    UNHEALTHY = "UNHEALTHY"  # users' workload is or will be hurt; an action is suggested
    UNKNOWN = "UNKNOWN"  # the check could not decide (probe failed, data missing)


# Ordering used to fold several results into one verdict: the worst wins.
SEVERITY = {State.HEALTHY: 0, State.UNKNOWN: 1, State.DEGRADED: 2, State.UNHEALTHY: 3}


class Action(StrEnum):
    """What an operator (or a playbook) should do about a result. `MEANING` says each in one sentence."""

    NONE = "none"
    RESTART_WORKER = "restart_worker"
    RESET_GPU = "reset_gpu"
    REBOOT_NODE = "reboot_node"
    INSPECT_HARDWARE = "inspect_hardware"
    CHECK_WORKLOAD = "check_workload"
    FIX_CONFIG = "fix_config"
    CHECK_NETWORK = "check_network"
    FREE_RESOURCES = "free_resources"
    REDEPLOY_MODEL = "redeploy_model"
    LOWER_MEMORY_FRACTION = "lower_memory_fraction"
    QUARANTINE_GPU = "quarantine_gpu"
    ROTATE_LOGS = "rotate_logs"
    SCALE_UP = "scale_up"
    SCALE_DOWN = "scale_down"


MEANING: Mapping[Action, str] = MappingProxyType(
    {
        Action.NONE: "Nothing to do; the result is informational.",
        Action.RESTART_WORKER: "Restart the inference worker process; the GPU and the node are fine.",
        Action.RESET_GPU: "Drain the GPU and reset it (nvidia-smi -r); the node keeps serving on the others.",
        Action.REBOOT_NODE: "Drain the node and reboot it; a GPU reset cannot clear this fault.",
        Action.INSPECT_HARDWARE: "Take the part out of service and have it inspected or replaced (RMA).",
        Action.CHECK_WORKLOAD: "Look at the application on the GPU (its logs, its inputs); the hardware is "
        "not suspected.",
        Action.FIX_CONFIG: "Change the node's or the agent's configuration; retrying will not help.",
        Action.CHECK_NETWORK: "Check the link, cabling, switch port or remote peer named in the reason.",
        Action.FREE_RESOURCES: "Free host memory or disk space before the kernel or the worker fails.",
        Action.REDEPLOY_MODEL: "Re-fetch the model or plan files: they fail their checksum or cannot load.",
        Action.LOWER_MEMORY_FRACTION: "Restart the worker with a smaller GPU memory fraction so that it "
        "stops running out of GPU memory.",
        Action.QUARANTINE_GPU: "Stop scheduling work on this one GPU (by uuid) and keep serving on the "
        "others until it is reset or replaced.",
        Action.ROTATE_LOGS: "Rotate and compress the worker's logs to give back the disk space they hold.",
        Action.SCALE_UP: "Add serving capacity: the fleet is saturated (latency or queue over target).",
        Action.SCALE_DOWN: "Remove serving capacity: the fleet is idle well below its target load.",
    }
)


@dataclass(frozen=True)
class HealthResult:
    """One component's verdict. `since` (when the state began) is filled in by the store across cycles;
    a collector sets it only when it knows better (an XID that happened before the agent started)."""

    component: str
    state: State
    reason: str
    suggested_action: Action = Action.NONE
    labels: Mapping[str, str] = field(default_factory=dict)
    since: float | None = None
    timestamp: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, object]:
        return {
            "component": self.component,
            "state": str(self.state),
            "reason": self.reason,
            "suggested_action": str(self.suggested_action),
            "labels": dict(self.labels),
            "since": self.since,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class Transition:
    """A component changed state (`old` is None the first time a component is seen not HEALTHY)."""

    component: str
    labels: Mapping[str, str]
    old: State | None
    new: State
    reason: str
    action: Action
    at: float

    def to_json(self) -> dict[str, object]:
        return {
            "component": self.component,
            "labels": dict(self.labels),
            "old": None if self.old is None else str(self.old),
            "new": str(self.new),
            "reason": self.reason,
            "action": str(self.action),
            "at": self.at,
        }


def worst(states: list[State]) -> State:
    """The most severe state in `states`; HEALTHY when there is nothing to judge."""
    return max(states, key=SEVERITY.__getitem__, default=State.HEALTHY)
