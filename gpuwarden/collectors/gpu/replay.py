"""The replay backend: a double of NVML that serves a recording made on a real node (record.py).

Faults are scripted in the same file, under `script`, derived from a real recording:
- `script.devices[i][key]`: `{"sequence": [v1, v2, ...]}` answers v1, then v2, ... (the last repeats):
  an ECC storm is a corrected-error counter that climbs; `{"error": 15}` answers GPU_IS_LOST;
  `{"hang": true}` never returns (until shutdown), like a driver stuck in D state.
- `script.device_count`: a different count than recorded (a GPU that fell off the bus).
- `script.init_error`: a reason string; init raises NvmlUnavailable (no driver).
- `script.xid_events`: `[{"gpu": 0, "xid": 79}]`, delivered once by `wait_event`.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

from gpuwarden.collectors.gpu.backend import NvmlCallError, NvmlUnavailable, XidEvent
from gpuwarden.collectors.gpu.queries import BY_KEY
from gpuwarden.collectors.gpu.record import FORMAT


class ReplayBackend:
    def __init__(self, recording: dict[str, Any]) -> None:
        if recording.get("format") != FORMAT:
            raise ValueError(f"not an NVML recording (format {recording.get('format')!r}, want {FORMAT})")
        self.recording = recording
        script = recording.get("script") or {}
        self._script_devices: list[dict[str, Any]] = script.get("devices") or []
        self._count = int(script.get("device_count", recording["device_count"]))
        self._init_error: str | None = script.get("init_error")
        self._events = [
            XidEvent(int(e["gpu"]), int(e["xid"]), "nvml", 0.0) for e in script.get("xid_events", [])
        ]
        self._steps: dict[tuple[int, str], int] = {}
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str) -> ReplayBackend:
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def init(self) -> dict[str, Any]:
        if self._init_error:
            raise NvmlUnavailable(self._init_error)
        return dict(self.recording["system"])

    def device_count(self) -> int:
        return self._count

    def query(self, index: int, key: str) -> Any:
        fn = BY_KEY[key].fn
        devices = self.recording["devices"]
        if index >= len(devices):
            raise NvmlCallError(15, fn)
        scripted = self._script_devices[index].get(key) if index < len(self._script_devices) else None
        answer = self._scripted(index, key, scripted) if scripted is not None else devices[index][key]
        if "error" in answer:
            raise NvmlCallError(int(answer["error"]), fn)
        return copy.deepcopy(answer["value"])

    def _scripted(self, index: int, key: str, scripted: dict[str, Any]) -> dict[str, Any]:
        if scripted.get("hang"):
            self._stopped.wait()  # a driver in D state: returns only when the agent shuts down
            raise NvmlCallError(999, BY_KEY[key].fn)
        if "sequence" in scripted:
            with self._lock:
                step = self._steps.get((index, key), 0)
                self._steps[(index, key)] = step + 1
            seq = scripted["sequence"]
            return {"value": seq[min(step, len(seq) - 1)]}
        return dict(scripted)

    def register_xid_events(self) -> list[int]:
        return list(range(self._count))

    def wait_event(self, timeout_ms: int) -> XidEvent | None:
        with self._lock:
            if self._events:
                event = self._events.pop(0)
                return XidEvent(event.gpu, event.xid, "nvml", time.time())
        self._stopped.wait(timeout_ms / 1000)
        return None

    def shutdown(self) -> None:
        self._stopped.set()
