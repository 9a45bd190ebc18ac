"""The agent's interval jobs: each runs every `interval` seconds in its own thread, never two at once.

This replaced APScheduler's BackgroundScheduler, of which the agent used interval jobs with coalescing
and one instance at a time. APScheduler 3 imports asyncio, multiprocessing and scans every installed
distribution's entry points when it is imported: 4.5 MB resident, a ninth of the agent's 40 MB budget
(`python bench/footprint.py`, issue 15), for what the stdlib's threading does in the lines below.

Semantics kept from the APScheduler setup it replaces (coalesce=True, max_instances=1, no misfire limit):
- runs are due at start + k * interval; the first one an interval after `add`;
- a job never overlaps itself: a run that overruns delays the next, and the ticks it missed are
  coalesced into that one run (not replayed one after another);
- `remove` lets a run in progress finish (a collection ends at its own deadline) and schedules no more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class Scheduler:
    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._jobs: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.running = False

    def start(self) -> None:
        self.running = True

    def shutdown(self) -> None:
        """Schedule nothing more; runs in progress finish in their own (daemon) threads."""
        with self._lock:
            self.running = False
            for stop in self._jobs.values():
                stop.set()
            self._jobs.clear()

    def add(self, name: str, fn: Callable[[], object], interval: float) -> None:
        """Run `fn` every `interval` seconds from now on, replacing a job of the same name."""
        stop = threading.Event()
        with self._lock:
            if name in self._jobs:
                self._jobs[name].set()
            self._jobs[name] = stop
        thread = threading.Thread(target=self._loop, args=(name, fn, interval, stop), name=f"every-{name}")
        thread.daemon = True
        thread.start()

    def remove(self, name: str) -> None:
        with self._lock:
            stop = self._jobs.pop(name, None)
        if stop is not None:
            stop.set()

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._jobs)

    def _loop(self, name: str, fn: Callable[[], object], interval: float, stop: threading.Event) -> None:
        start = time.monotonic()
        due = start + interval
        while not stop.wait(max(0.0, due - time.monotonic())):
            try:
                fn()
            except Exception:  # a job's bug must not end its schedule (APScheduler logged and went on too)
                self.log.exception("job %s failed", name)
            # The next tick after now: ticks missed while the run overran are coalesced into that one.
            missed = int((time.monotonic() - start) // interval)
            due = start + (missed + 1) * interval
