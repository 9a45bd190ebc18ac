"""One dedicated thread for NVML calls, with a deadline on every job.

A driver stuck in D state never returns from an NVML call (open-gpu-kernel-modules#1333; gpud#117;
NVSentinel#1576). So the collector never calls NVML on its own thread: it hands a job to this thread and
waits at most `deadline` seconds. While a job hangs no new job is queued, so a hung driver costs exactly
one thread for the life of the hang, never one per cycle; the collector reports `driver_unresponsive`.
The deadline and the one-job-at-a-time rule are `gpuwarden.deadline.Lane`'s; this adds NVML's words.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from gpuwarden.deadline import DeadlineExceeded, Lane

T = TypeVar("T")


class DriverUnresponsive(Exception):
    def __init__(self, job: str, since: float) -> None:
        self.job = job
        self.since = since
        super().__init__(f"NVML call '{job}' has not returned for {time.monotonic() - since:.1f}s")


class NvmlThread:
    def __init__(self, name: str = "nvml") -> None:
        self._lane = Lane(name, dedicated=True)

    def run(self, job: str, fn: Callable[[], T], deadline: float) -> T:
        """`fn()` on the NVML thread; DriverUnresponsive if it (or an earlier job) is still running."""
        try:
            return self._lane.run(fn, deadline, name=job)
        except DeadlineExceeded as err:
            raise DriverUnresponsive(err.name, err.since) from None

    @property
    def hung(self) -> bool:
        return self._lane.hung

    def stop(self) -> None:
        """Ask the thread to end after its current job (a hung job keeps it; it is a daemon thread)."""
        self._lane.stop()
