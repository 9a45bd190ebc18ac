"""XID catalog, de-duplication across sources, and escalation on repeats.

Default actions follow NVIDIA's XID catalog ("Resolution Bucket (Immediate Action)", as embedded in
NVSentinel and gpud's catalog_generated.go): RESTART_APP → restart the worker, RESET_GPU → reset the GPU,
RESTART_BM → reboot the node, CONTACT_SUPPORT → inspect the hardware, IGNORE → none. Operators override
per XID in config (gpud --xid-thresholds, NVSentinel overrides). A repeat escalates one rung: the same XID
`escalate_after` times within `escalate_window` means the last action did not help (gpud escalates to
hardware inspection after 2 reboots; NVSentinel after 5 in 24 h).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from gpuwarden.collectors.gpu.backend import XidEvent
from gpuwarden.health import Action, State

# XID → (what it means, NVIDIA's immediate action). Sources disagree on 45/63/94/121; NVIDIA's wins.
CATALOG: dict[int, tuple[str, Action]] = {
    13: ("graphics engine exception", Action.RESTART_WORKER),
    31: ("GPU memory page (MMU) fault", Action.RESTART_WORKER),
    43: ("GPU stopped processing (application fault)", Action.NONE),
    45: ("preemptive cleanup after an earlier error", Action.NONE),
    46: ("GPU stopped responding (timeout)", Action.RESET_GPU),
    48: ("double-bit ECC error", Action.RESET_GPU),
    61: ("internal micro-controller breakpoint", Action.INSPECT_HARDWARE),
    62: ("internal micro-controller halt", Action.RESET_GPU),
    63: ("row remap / page retirement recorded", Action.NONE),  # the remapped-rows check judges this
    64: ("row remap / page retirement failed", Action.RESET_GPU),
    74: ("NVLink error", Action.INSPECT_HARDWARE),
    79: ("GPU has fallen off the bus", Action.REBOOT_NODE),
    92: ("high single-bit ECC error rate", Action.NONE),
    94: ("contained ECC error", Action.RESTART_WORKER),
    95: ("uncontained ECC error", Action.RESET_GPU),
    109: ("context switch timeout", Action.RESET_GPU),
    119: ("GSP RPC timeout", Action.RESET_GPU),
    120: ("GSP firmware error", Action.RESET_GPU),
    121: ("C2C link corrected error", Action.NONE),
    136: ("link training failure", Action.RESET_GPU),
    140: ("unrecovered ECC error", Action.RESET_GPU),
    143: ("GPU initialization failure", Action.RESET_GPU),
    155: ("NVLink software-defined error", Action.RESET_GPU),
    156: ("resource retirement event", Action.RESET_GPU),
    158: ("GPU fatal timeout", Action.RESET_GPU),
}
# NVLink5 XIDs 144-150 need their intrinfo decoded (NVIDIA "Xid 144-150 Decode"); until then, inspect.
CATALOG.update({xid: ("NVLink5 fabric error", Action.INSPECT_HARDWARE) for xid in range(144, 151)})

LADDER = (Action.NONE, Action.RESTART_WORKER, Action.RESET_GPU, Action.REBOOT_NODE, Action.INSPECT_HARDWARE)


def describe(xid: int) -> str:
    return CATALOG.get(xid, ("not in the catalog", Action.INSPECT_HARDWARE))[0]


def state_for(action: Action) -> State:
    if action is Action.NONE:
        return State.HEALTHY
    if action is Action.RESTART_WORKER:
        return State.DEGRADED  # the GPU is fine; one application lost its context
    return State.UNHEALTHY


@dataclass(frozen=True)
class Verdict:
    state: State
    reason: str
    action: Action


class XidLedger:
    """Counts XIDs per (gpu, xid), drops the same event seen by both sources, judges a GPU's health."""

    def __init__(
        self,
        overrides: Mapping[int, Action] | None = None,
        dedup_window: float = 10.0,
        lookback: float = 86400.0,
        escalate_after: int = 3,
        escalate_window: float = 86400.0,
    ) -> None:
        self.overrides = dict(overrides or {})
        self.dedup_window = dedup_window
        self.lookback = lookback
        self.escalate_after = escalate_after
        self.escalate_window = escalate_window
        self.counts: dict[tuple[str, int], int] = defaultdict(int)
        self.last_seen: dict[tuple[str, int], float] = {}
        self._recent: dict[tuple[str, int], list[tuple[str, float]]] = defaultdict(list)

    def action(self, xid: int) -> Action:
        return self.overrides.get(xid, CATALOG.get(xid, ("", Action.INSPECT_HARDWARE))[1])

    def add(self, event: XidEvent, gpu: str) -> bool:
        """Record `event` for `gpu` (an index, or a PCI id when the index is unknown); False if a duplicate.

        NVML's event and the kernel log line are two views of one error: the same XID on the same GPU
        from the other source within `dedup_window` seconds is not counted twice."""
        key = (gpu, event.xid)
        recent = self._recent[key]
        if any(src != event.source and abs(t - event.time) <= self.dedup_window for src, t in recent):
            return False
        recent.append((event.source, event.time))
        horizon = event.time - max(self.lookback, self.escalate_window)
        self._recent[key] = [(s, t) for s, t in recent if t >= horizon]
        self.counts[key] += 1
        self.last_seen[key] = max(self.last_seen.get(key, 0.0), event.time)
        return True

    def verdict(self, gpu: str, now: float) -> Verdict:
        worst: tuple[int, Action, str] = (0, Action.NONE, "")
        for (g, xid), events in self._recent.items():
            times = [t for _, t in events if t >= now - self.lookback]
            if g != gpu or not times:
                continue
            action = self.action(xid)
            repeats = len([t for t in times if t >= now - self.escalate_window])
            note = ""
            if action is not Action.NONE and repeats >= self.escalate_after:
                action = LADDER[min(LADDER.index(action) + 1, len(LADDER) - 1)]
                note = f", seen {repeats} times: escalated"
            rung = LADDER.index(action)
            if rung > worst[0] or not worst[2]:
                worst = (rung, action, f"XID {xid} ({describe(xid)}){note}")
        if not worst[2]:
            return Verdict(State.HEALTHY, "no XID errors in the lookback window", Action.NONE)
        return Verdict(state_for(worst[1]), worst[2], worst[1])
