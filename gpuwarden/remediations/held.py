"""A held bad state refused the same way again and again: one run in the audit log, then a count.

A health trigger fires again every `for_s` while its component stays bad (triggers.py), so a playbook that
is exhausted, paused, in storm mode, cooling down or has nothing to do would write a whole skipped run
(trigger, decision, outcome) every `for_s`, for as long as the state holds: thousands of identical runs a
day that bury the runs on-call looks for. Instead the first refusal is written as a run, as before; each
later request for the same playbook and component that the same rail refuses is only counted, and the
count goes into one `repeats` record of that first run when the streak ends (another rail or an allowed
run, the component recovering, the engine stopping) and at least every `CHECKPOINT_S` while it lasts, so a
crash loses at most that much of the count, never a run that acted. Only refusals are collapsed: anything
that passes the rails is a run of its own with every record.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

CHECKPOINT_S = 3600.0  # a held streak writes its count at least hourly (one crash loses at most this)


@dataclass
class Streak:
    run: str  # the run that recorded the first refusal; the `repeats` records belong to it
    target: str
    rail: str
    reason: str  # of the latest refusal
    first: float  # wall time of the first request counted since the last record
    last: float
    written: float  # wall time of the run or of the last `repeats` record
    count: int = 0


Key = tuple[str, str]  # (playbook, component)


class Streaks:
    """Open streaks by (playbook, component); called from the engine's consumer and tick threads."""

    def __init__(self, checkpoint_s: float = CHECKPOINT_S) -> None:
        self.checkpoint_s = checkpoint_s
        self._open: dict[Key, Streak] = {}
        self._lock = threading.Lock()

    def repeat(self, key: Key, rail: str, reason: str, now: float) -> bool:
        """True (and counted) when `key`'s open streak was refused by the same rail."""
        with self._lock:
            streak = self._open.get(key)
            if streak is None or streak.rail != rail:
                return False
            if streak.count == 0:
                streak.first = now
            streak.count += 1
            streak.last, streak.reason = now, reason
            return True

    def start(self, key: Key, run: str, target: str, rail: str, reason: str, now: float) -> None:
        with self._lock:
            self._open[key] = Streak(run, target, rail, reason, now, now, now)

    def end(self, key: Key) -> Streak | None:
        """The streak of `key`, closed (None when there is none)."""
        with self._lock:
            return self._open.pop(key, None)

    def counted(self, key: Key) -> int:
        """Refusals of `key` counted and not written yet."""
        with self._lock:
            streak = self._open.get(key)
            return streak.count if streak is not None else 0

    def open_keys(self) -> list[Key]:
        with self._lock:
            return list(self._open)

    def checkpoints(self, now: float) -> list[tuple[Key, Streak]]:
        """Streaks whose count is due to be written (kept open, their count taken)."""
        due = []
        with self._lock:
            for key, streak in self._open.items():
                if streak.count and now - streak.written >= self.checkpoint_s:
                    due.append((key, Streak(**vars(streak))))
                    streak.count, streak.written = 0, now
        return due
