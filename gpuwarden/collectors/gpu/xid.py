"""XID faults: de-duplication across sources, grouping of repeated lines into faults, escalation.

Each XID's action is NVIDIA's immediate action (xid_table.py maps NVIDIA's catalog); the message can name
a different one (NVLink5 decode for 144-150, the new recovery action for 154). Operators override per
XID in config (gpud --xid-thresholds, NVSentinel overrides).

A *fault* is what escalation counts, not a log line: the driver prints one fault's XID many times within
milliseconds, and a hung GPU repeats its XID for minutes. Lines of the same XID on the same GPU (and GPU
instance) less than `burst_window` seconds apart are one fault; `escalate_after` faults within
`escalate_window` mean the last action did not help, and the action goes one rung up (gpud escalates to
hardware inspection after 2 reboots; NVSentinel after 5 faults in 24 h).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from gpuwarden.collectors.gpu.backend import XidEvent
from gpuwarden.collectors.gpu.xid_table import LADDER, XID_TABLE, judge_message
from gpuwarden.health import Action, State

__all__ = ["LADDER", "Verdict", "XidLedger", "describe", "state_for"]


def describe(xid: int) -> str:
    entry = XID_TABLE.get(xid)
    return entry.description if entry else "not in NVIDIA's catalog"


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


@dataclass
class Fault:
    """One fault: every line of one XID on one GPU instance until a quiet gap of `burst_window`."""

    first: float
    last: float
    action: Action
    note: str = ""  # what the message said (NVLink5 decode, XID 154's recovery action)
    lines: int = 1
    sources: set[str] = field(default_factory=set)


Key = tuple[str, int]  # (gpu, xid)


class XidLedger:
    """Counts XID reports per (gpu, xid), groups them into faults, judges a GPU's health."""

    def __init__(
        self,
        overrides: Mapping[int, Action] | None = None,
        dedup_window: float = 10.0,
        lookback: float = 86400.0,
        escalate_after: int = 3,
        escalate_window: float = 86400.0,
        burst_window: float = 300.0,
    ) -> None:
        self.overrides = dict(overrides or {})
        self.dedup_window = dedup_window
        self.lookback = lookback
        self.escalate_after = escalate_after
        self.escalate_window = escalate_window
        self.burst_window = burst_window
        # Reports since the agent started (a counter), per (gpu, xid) and GPU instance ("" without MIG).
        self.counts: dict[tuple[str, int, str], int] = defaultdict(int)
        self.last_seen: dict[tuple[str, int, str], float] = {}
        self._recent: dict[Key, list[tuple[str, float]]] = defaultdict(list)  # (source, time), for dedup
        self._faults: dict[tuple[str, int, str], list[Fault]] = defaultdict(list)

    def action(self, xid: int, message: str = "") -> tuple[Action, str]:
        """The action for one report of `xid`, and what its message said; an override always wins."""
        if xid in self.overrides:
            return self.overrides[xid], ""
        said = judge_message(xid, message) if message else None
        if said is not None:
            return said
        entry = XID_TABLE.get(xid)
        return (entry.action if entry else Action.INSPECT_HARDWARE), ""

    def add(self, event: XidEvent, gpu: str, gpu_instance: str = "", message: str = "") -> bool:
        """Record `event` for `gpu` (an index, or a PCI id when the index is unknown); False if a duplicate.

        NVML's event and the kernel log line are two views of one report: the same XID on the same GPU
        from the other source within `dedup_window` seconds is not counted twice. Its message still
        refines the fault (NVML events carry no text)."""
        key = (gpu, event.xid)
        recent = self._recent[key]
        action, note = self.action(event.xid, message)
        duplicate = any(src != event.source and abs(t - event.time) <= self.dedup_window for src, t in recent)
        if not duplicate:
            recent.append((event.source, event.time))
            horizon = event.time - max(self.lookback, self.escalate_window) - self.burst_window
            self._recent[key] = [(s, t) for s, t in recent if t >= horizon]
            counter = (gpu, event.xid, gpu_instance)
            self.counts[counter] += 1
            self.last_seen[counter] = max(self.last_seen.get(counter, 0.0), event.time)
        self._fault(gpu, event, gpu_instance, action, note, duplicate)
        return not duplicate

    def _fault(
        self, gpu: str, event: XidEvent, instance: str, action: Action, note: str, duplicate: bool
    ) -> None:
        faults = self._faults[(gpu, event.xid, instance)]
        bw = self.burst_window
        current = next((f for f in faults if f.first - bw < event.time < f.last + bw), None)
        if current is None:
            faults.append(Fault(event.time, event.time, action, note, sources={event.source}))
            faults.sort(key=lambda f: f.first)
            horizon = event.time - max(self.lookback, self.escalate_window) - bw
            self._faults[(gpu, event.xid, instance)] = [f for f in faults if f.last >= horizon]
            return
        current.first, current.last = min(current.first, event.time), max(current.last, event.time)
        current.lines += 0 if duplicate else 1
        current.sources.add(event.source)
        if event.xid == 154 and note:
            current.action, current.note = action, note  # the latest recovery action replaces the earlier
        elif LADDER.index(action) > LADDER.index(current.action) or (note and not current.note):
            current.action, current.note = max(action, current.action, key=LADDER.index), note

    def verdict(self, gpu: str, now: float) -> Verdict:
        worst: tuple[int, Action, str] = (0, Action.NONE, "")
        for (g, xid, instance), faults in self._faults.items():
            live = [f for f in faults if f.last >= now - self.lookback]
            if g != gpu or not live:
                continue
            # One fault's action: XID 154's latest word, otherwise the worst of the faults in the lookback.
            latest = live[-1] if xid == 154 else max(live, key=lambda f: LADDER.index(f.action))
            action = latest.action
            repeats = len([f for f in live if f.last >= now - self.escalate_window])
            where = f" on GPU instance {instance}" if instance else ""
            note = f": {latest.note}" if latest.note else ""
            suffix = ""
            if action is not Action.NONE and repeats >= self.escalate_after:
                action = LADDER[min(LADDER.index(action) + 1, len(LADDER) - 1)]
                suffix = f", {repeats} faults: escalated"
            rung = LADDER.index(action)
            if rung > worst[0] or not worst[2]:
                worst = (rung, action, f"XID {xid} ({describe(xid)}){where}{note}{suffix}")
        if not worst[2]:
            return Verdict(State.HEALTHY, "no XID errors in the lookback window", Action.NONE)
        return Verdict(state_for(worst[1]), worst[2], worst[1])
