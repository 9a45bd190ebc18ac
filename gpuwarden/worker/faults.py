"""Fault injection for the reference worker: the failure modes an inference engine shows in production.

- errors:  inferences fail with HTTP 500 and log PyTorch's `CUDA out of memory` line (what the OOM
           remediation watches for);
- latency: each affected inference sleeps `latency_s` first (a latency spike, a throttled GPU);
- hang:    every KServe request blocks until the fault ends (a deadlocked engine: health endpoints hang too,
           the admin API and /metrics keep answering so tests can clear it);
- crash:   the process exits abruptly (a segfault or a CUDA assertion);
- wrong:   answers are silently perturbed (numeric corruption that liveness endpoints miss).
`rate` is the share of requests affected (errors, latency, wrong); `duration_s` ends the fault by itself.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Literal, get_args

FaultKind = Literal["errors", "latency", "hang", "crash", "wrong", "none"]
KINDS: tuple[str, ...] = get_args(FaultKind)
SIGNAL_BURST_S = 10.0  # SIGUSR1's error burst: long enough for a 5 s scrape interval to see it twice
# Upper bounds: a "latency" of hours is a hang (use that fault), and sleep() refuses what a float holds
# beyond ~292 years; a fault for longer than a day is a mistake in a test or a demo.
MAX_SECONDS = {"duration_s": 86400.0, "latency_s": 3600.0, "rate": 1.0}

# The message PyTorch's caching allocator raises (torch.OutOfMemoryError), as vLLM workers log it.
OOM_LINE = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
    "139.72 GiB of which 1.06 GiB is free. (fault injected by gpuwarden worker)"
)


class FaultError(ValueError):
    """A fault request that does not make sense; the admin API answers 400 with this message."""


@dataclass(frozen=True)
class Fault:
    kind: FaultKind = "none"
    until: float | None = None  # time.monotonic() deadline; None: until cleared
    latency_s: float = 1.0
    rate: float = 1.0

    def active(self, now: float) -> bool:
        return self.kind != "none" and (self.until is None or now < self.until)


def parse_request(body: object) -> Fault:
    """The admin API's JSON body → Fault, or FaultError naming the bad field."""
    if not isinstance(body, dict):
        raise FaultError("body must be a JSON object")
    unknown = set(body) - {"fault", "duration_s", "latency_s", "rate"}
    if unknown:
        raise FaultError(f"unknown field(s): {', '.join(sorted(unknown))}")
    kind = body.get("fault")
    if kind not in KINDS:
        raise FaultError(f"fault: must be one of {', '.join(KINDS)}")
    numbers: dict[str, float | None] = {}
    for key, default in (("duration_s", None), ("latency_s", 1.0), ("rate", 1.0)):
        value = body.get(key, default)
        if value is None:
            numbers[key] = None
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise FaultError(f"{key}: must be a number >= 0")
        if value > MAX_SECONDS[key]:
            limit = "must be between 0 and 1" if key == "rate" else f"must be at most {MAX_SECONDS[key]:g}"
            raise FaultError(f"{key}: {limit}")
        numbers[key] = float(value)
    rate = numbers["rate"]
    duration = numbers["duration_s"]
    return Fault(
        kind=kind,
        until=None if duration is None else time.monotonic() + duration,
        latency_s=numbers["latency_s"] or 0.0,
        rate=1.0 if rate is None else rate,
    )


class FaultState:
    """The worker's current fault; request threads read it, the admin API and signal handlers set it."""

    def __init__(self) -> None:
        self._fault = Fault()
        self._changed = threading.Condition()

    def set(self, fault: Fault) -> None:
        with self._changed:
            self._fault = fault
            self._changed.notify_all()

    def clear(self) -> None:
        self.set(Fault())

    def current(self) -> Fault:
        fault = self._fault
        return fault if fault.active(time.monotonic()) else Fault()

    def hits(self, kind: FaultKind) -> Fault | None:
        """The active fault if it is `kind` and this request falls within its rate."""
        fault = self.current()
        if fault.kind == kind and random.random() < fault.rate:
            return fault
        return None

    def wait_while_hung(self) -> None:
        """Block the calling request thread for as long as a hang fault is active."""
        with self._changed:
            while (fault := self.current()).kind == "hang":
                timeout = None if fault.until is None else max(fault.until - time.monotonic(), 0.0)
                self._changed.wait(timeout=timeout if timeout is not None else 1.0)

    def describe(self) -> dict[str, object]:
        fault = self.current()
        remaining = None if fault.until is None else round(max(fault.until - time.monotonic(), 0.0), 3)
        return {
            "fault": fault.kind,
            "remaining_s": remaining,
            "latency_s": fault.latency_s,
            "rate": fault.rate,
        }
