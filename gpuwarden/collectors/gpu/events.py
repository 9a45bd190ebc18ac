"""The NVML XID event thread: registers for XID critical errors and waits, one second at a time.

It has its own thread because nvmlEventSetWait_v2 blocks; a one-second wait bounds how late `stop()`
takes effect (utkuozdemir/nvidia_gpu_exporter waits 1 s the same way). Events go to a queue the collector
drains each cycle.
"""

from __future__ import annotations

import logging
import queue
import threading

from gpuwarden.collectors.gpu.backend import Backend, NvmlCallError, XidEvent


class XidWatcher:
    def __init__(self, backend: Backend, log: logging.Logger, wait_ms: int = 1000) -> None:
        self.backend = backend
        self.log = log
        self.wait_ms = wait_ms
        self.events: queue.SimpleQueue[XidEvent] = queue.SimpleQueue()
        self.registered: list[int] | None = None
        self.error: str | None = None
        self.waits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nvml-xid-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def _loop(self) -> None:
        try:
            self.registered = self.backend.register_xid_events()
            while not self._stop.is_set():
                event = self.backend.wait_event(self.wait_ms)
                self.waits += 1
                if event is not None:
                    self.events.put(event)
        except NvmlCallError as err:
            self.error = str(err)
            self.log.warning("XID event thread stopped: %s (the kernel log still reports XIDs)", err)

    def drain(self) -> list[XidEvent]:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
