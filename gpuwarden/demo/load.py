"""Client traffic for the worker: a few threads sending the canary input over KServe v2, about `rate` per
second in all, so that the worker's request counters and latency histogram (what the agent's inference
collector reads) move as they would under real load."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import requests


class Load:
    def __init__(self, worker: str, model_dir: Path, rate: float = 12.0, threads: int = 4) -> None:
        self.url = f"{worker}/v2/models/canary/infer"
        self.model_dir = model_dir
        self.period = threads / rate
        self.threads = threads
        self.stop = threading.Event()
        self.statuses: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._body: dict[str, object] | None = None

    def start(self) -> Load:
        for i in range(self.threads):
            threading.Thread(target=self._loop, name=f"load-{i}", daemon=True).start()
        return self

    def _body_or_none(self) -> dict[str, object] | None:
        if self._body is None:
            try:  # the worker writes its canary when it first starts
                canary = json.loads((self.model_dir / "canary.json").read_text())
                self._body = {"inputs": canary["inputs"]}
            except (OSError, ValueError, KeyError):
                return None
        return self._body

    def _loop(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                started = time.monotonic()
                body = self._body_or_none()
                if body is not None:
                    try:
                        status = str(session.post(self.url, json=body, timeout=3).status_code)
                    except requests.RequestException as err:
                        status = type(err).__name__
                    with self._lock:
                        self.statuses[status] += 1
                self.stop.wait(max(0.0, self.period - (time.monotonic() - started)))

    def close(self) -> None:
        self.stop.set()
