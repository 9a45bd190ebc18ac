"""`gpuwarden gpu record`: ask a real node every question of the query plan and keep the answers.

The file is the replay backend's input (replay.py), so CI runs the collector on what an H200 really said.
Errors are kept as codes (NOT_SUPPORTED is data: it tells the collector a signal is absent). Process ids
are kept as recorded; serial numbers are never asked for. Each answer also keeps its call time, so the
recording doubles as a cost table for the node it came from.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from gpuwarden.collectors.gpu.backend import Backend, NvmlCallError
from gpuwarden.collectors.gpu.queries import QUERIES

FORMAT = "gpuwarden-nvml-recording/1"


def record(backend: Backend, event_wait_ms: int = 200) -> dict[str, Any]:
    system = backend.init()
    count = backend.device_count()
    devices: list[dict[str, Any]] = []
    timings: list[dict[str, float]] = []
    for index in range(count):
        answers: dict[str, Any] = {}
        costs: dict[str, float] = {}
        for q in QUERIES:
            start = time.perf_counter()
            try:
                answers[q.key] = {"value": backend.query(index, q.key)}
            except NvmlCallError as err:
                answers[q.key] = {"error": err.code}
            costs[q.key] = round((time.perf_counter() - start) * 1e6, 1)
        devices.append(answers)
        timings.append(costs)
    events: dict[str, Any] = {"wait_ms": event_wait_ms}
    try:
        events["registered_gpus"] = backend.register_xid_events()
        start = time.perf_counter()
        event = backend.wait_event(event_wait_ms)
        events["waited_ms"] = round((time.perf_counter() - start) * 1e3, 1)
        events["result"] = "timeout" if event is None else {"gpu": event.gpu, "xid": event.xid}
    except NvmlCallError as err:
        events["error"] = err.code
    backend.shutdown()
    return {
        "format": FORMAT,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "system": system,
        "device_count": count,
        "devices": devices,
        "call_us": timings,
        "xid_events": events,
    }


def write(recording: dict[str, Any], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(recording, f, indent=1, sort_keys=True)
        f.write("\n")


def cli(args: Any) -> int:
    """`gpuwarden gpu record --out FILE`; exit 69 (EX_UNAVAILABLE) where there is no driver."""
    import sys

    from gpuwarden.collectors.gpu.backend import NvmlUnavailable
    from gpuwarden.collectors.gpu.nvml_backend import NvmlBackend

    try:
        recording = record(NvmlBackend())
    except NvmlUnavailable as err:
        print(f"gpuwarden: cannot record: {err}", file=sys.stderr)
        return 69
    write(recording, args.out)
    driver = recording["system"]["driver_version"]
    print(f"recorded {recording['device_count']} GPU(s), driver {driver} → {args.out}")
    return 0
