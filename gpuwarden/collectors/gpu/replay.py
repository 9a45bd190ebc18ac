"""The replay backend: a double of NVML that serves a recording made on a real node (record.py).

Faults are scripted in the same file, under `script`, on top of a real recording (see
tests/fixtures/nvml/derive_faults.py). An answer is `{"value": v}`, `{"error": code}` or `{"hang": true}`
(never returns until shutdown, like a driver stuck in D state).
- `script.devices[i][key]`: an answer, or `{"sequence": [answer, ...]}`: one per call, the last repeats.
  An ECC storm is a corrected-error counter that climbs; a lost GPU answers `{"error": 15}`.
- `script.device_count`: a number or `{"sequence": [...]}` of numbers or errors (a GPU fell off the bus).
- `script.init_error`: a reason; init raises NvmlUnavailable (no driver).
- `script.xid_events`: `[{"gpu": 0, "xid": 79}]`, delivered once each by `wait_event`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from gpuwarden.collectors.gpu.backend import GPU_IS_LOST, NvmlCallError, NvmlUnavailable, XidEvent
from gpuwarden.collectors.gpu.queries import BY_KEY
from gpuwarden.collectors.gpu.record import FORMAT


def _fresh(value: Any) -> Any:
    """A copy of a recorded (JSON) answer, as NVML gives a fresh one each call (the collector may keep or
    change it). copy.deepcopy's bookkeeping was most of the replay's own cost per cycle."""
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    return value  # numbers, strings, None: cannot be changed


class ReplayBackend:
    def __init__(self, recording: dict[str, Any]) -> None:
        if recording.get("format") != FORMAT:
            raise ValueError(f"not an NVML recording (format {recording.get('format')!r}, want {FORMAT})")
        self.recording = recording
        script = recording.get("script") or {}
        self._script_devices: list[dict[str, Any]] = script.get("devices") or []
        self._count_script: Any = script.get("device_count", recording["device_count"])
        self._init_error: str | None = script.get("init_error")
        self._events = [(int(e["gpu"]), int(e["xid"])) for e in script.get("xid_events", [])]
        self._steps: dict[tuple[int, str], int] = {}
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str) -> ReplayBackend:
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def init(self) -> dict[str, Any]:
        if self._init_error:
            raise NvmlUnavailable(self._init_error, no_driver=self._init_error.startswith("no NVIDIA driver"))
        return dict(self.recording["system"])

    def device_count(self) -> int:
        answer = self._step(-1, "device_count", self._count_script)
        if isinstance(answer, dict):
            raise NvmlCallError(int(answer["error"]), "nvmlDeviceGetCount")
        return int(answer)

    def query(self, index: int, key: str) -> Any:
        fn = BY_KEY[key].fn
        devices = self.recording["devices"]
        if index >= len(devices):
            raise NvmlCallError(GPU_IS_LOST, fn)
        scripted = self._script_devices[index].get(key) if index < len(self._script_devices) else None
        answer = self._step(index, key, scripted) if scripted is not None else devices[index][key]
        if answer.get("hang"):
            self._stopped.wait()  # a driver in D state: returns only when the agent shuts down
            raise NvmlCallError(999, fn)
        if "error" in answer:
            raise NvmlCallError(int(answer["error"]), fn)
        return _fresh(answer["value"])

    def _step(self, index: int, key: str, scripted: Any) -> Any:
        """The scripted answer for this call: the next of a sequence (the last repeats), or a fixed one."""
        if not isinstance(scripted, dict) or "sequence" not in scripted:
            return scripted
        with self._lock:
            step = self._steps.get((index, key), 0)
            self._steps[(index, key)] = step + 1
        seq = scripted["sequence"]
        return seq[min(step, len(seq) - 1)]

    def register_xid_events(self) -> list[int]:
        return list(range(int(self.recording["device_count"])))

    def wait_event(self, timeout_ms: int) -> XidEvent | None:
        with self._lock:
            if self._events:
                gpu, xid = self._events.pop(0)
                return XidEvent(gpu, xid, "nvml", time.time())
        self._stopped.wait(timeout_ms / 1000)
        return None

    def shutdown(self) -> None:
        self._stopped.set()
