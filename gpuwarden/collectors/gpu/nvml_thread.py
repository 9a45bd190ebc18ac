"""One dedicated thread for NVML calls, with a deadline on every job.

A driver stuck in D state never returns from an NVML call (open-gpu-kernel-modules#1333; gpud#117;
NVSentinel#1576). So the collector never calls NVML on its own thread: it hands a job to this thread and
waits at most `deadline` seconds. While a job hangs no new job is queued, so a hung driver costs exactly
one thread for the life of the hang, never one per cycle; the collector reports `driver_unresponsive`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

T = TypeVar("T")


class DriverUnresponsive(Exception):
    def __init__(self, job: str, since: float) -> None:
        self.job = job
        self.since = since
        super().__init__(f"NVML call '{job}' has not returned for {time.monotonic() - since:.1f}s")


class NvmlThread:
    def __init__(self, name: str = "nvml") -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        self._pending: Future[Any] | None = None
        self._pending_job = ""
        self._pending_since = 0.0

    def run(self, job: str, fn: Callable[[], T], deadline: float) -> T:
        """`fn()` on the NVML thread; DriverUnresponsive if it (or an earlier job) is still running."""
        if self._pending is not None and not self._pending.done():
            raise DriverUnresponsive(self._pending_job, self._pending_since)
        future: Future[T] = Future()
        self._pending, self._pending_job, self._pending_since = future, job, time.monotonic()
        self._jobs.put((fn, future))
        try:
            return future.result(timeout=deadline)
        except FutureTimeout:
            raise DriverUnresponsive(job, self._pending_since) from None

    @property
    def hung(self) -> bool:
        return self._pending is not None and not self._pending.done()

    def stop(self) -> None:
        """Ask the thread to end after its current job (a hung job keeps it; it is a daemon thread)."""
        self._jobs.put(None)

    def _loop(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            fn, future = item
            try:
                future.set_result(fn())
            except BaseException as err:  # noqa: BLE001 - handed to the waiting collector
                future.set_exception(err)
