"""Done-when of the inference collector: the real reference worker under a known synthetic load.

The test drives the worker open-loop (requests leave on a fixed schedule whatever the answers), keeps
every answer, and compares what the collector computes from the worker's /metrics with what the client
saw: request rate, error ratio (the worker's error fault, HTTP 500), latency (its latency fault).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from gpuwarden.agent.registry import CollectorContext
from gpuwarden.collectors.inference import InferenceCollector
from gpuwarden.collectors.inference.settings import InferenceSettings
from gpuwarden.config import AgentConfig
from gpuwarden.health import HealthResult, State
from tests.golden import split
from tests.integration.agent_process import free_port
from tests.integration.worker_process import WorkerProcess

pytestmark = pytest.mark.integration


@dataclass
class Load:
    """An open-loop load: `rps` requests per second for `seconds`, answers kept in `statuses`."""

    url: str
    body: dict[str, Any]
    rps: float
    seconds: float
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    done_sending: threading.Event = field(default_factory=threading.Event)

    def _one(self) -> None:
        started = time.perf_counter()
        try:
            code = requests.post(self.url, json=self.body, timeout=10).status_code
        except requests.RequestException:
            code = 0
        self.latencies.append(time.perf_counter() - started)
        self.statuses.append(code)

    def run(self) -> None:
        with ThreadPoolExecutor(max_workers=32) as pool:
            start = time.monotonic()
            for i in range(round(self.rps * self.seconds)):
                delay = start + i / self.rps - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(self._one)
            self.done_sending.set()  # the last request has left; answers may still be on their way

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


def canary_body(worker: WorkerProcess) -> dict[str, Any]:
    canary = json.loads((worker.model_dir / "canary.json").read_text())
    return {"inputs": canary["inputs"]}


def collector_for(url: str, **settings: Any) -> InferenceCollector:
    s = InferenceSettings.model_validate(
        {"enabled": True, "url": url + "/metrics", "interval": 1, **settings}
    )
    ctx = CollectorContext(paths=AgentConfig().paths.paths(), log=logging.getLogger("test"))
    return InferenceCollector(s, ctx)


def collect(collector: InferenceCollector) -> tuple[dict[str, float], list[HealthResult]]:
    metrics, health = split(collector.collect())
    out = {}
    for family in metrics:
        for s in family.samples:
            out[s.name + (f"{{{s.labels['quantile']}}}" if "quantile" in s.labels else "")] = s.value
    return out, health


def scrape_while(load: Load, collector: InferenceCollector, every: float = 1.0) -> dict[str, float]:
    """Collect every `every` seconds, as the agent's scheduler would, while the load is being sent."""
    figures: dict[str, float] = {}
    while not load.done_sending.wait(every):
        figures, _ = collect(collector)
    return figures


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    with WorkerProcess(tmp_path, "--max-concurrency", "32") as w:
        yield w


def test_qps_and_error_ratio_match_a_load_with_a_known_failing_share(worker: WorkerProcess) -> None:
    worker.fault("errors", rate=0.3)
    collector = collector_for(worker.url, window=60)
    collect(collector)  # the baseline: the window then holds exactly the load's requests
    load = Load(worker.url + "/v2/models/canary/infer", canary_body(worker), rps=20, seconds=10)
    thread = load.start()
    scrape_while(load, collector)
    thread.join()
    assert len(load.statuses) == 200 and set(load.statuses) <= {200, 500}
    figures, health = collect(collector)
    client_ratio = load.statuses.count(500) / len(load.statuses)
    # The same 200 requests on both sides: the ratio must agree exactly, and be near the injected rate.
    assert figures["gpuwarden_inference_error_ratio"] == pytest.approx(client_ratio, abs=1e-9)
    assert abs(client_ratio - 0.3) < 0.12
    # 200 requests sent over 10 s: the window spans the load, so the rate is the load's.
    assert figures["gpuwarden_inference_requests_per_second"] == pytest.approx(20, rel=0.05)
    (errors,) = [h for h in health if h.component == "inference.errors"]
    assert errors.state == State.DEGRADED and "over 200 requests" in errors.reason


def test_qps_and_p99_match_a_steady_load_with_a_known_latency_in_a_sliding_window(
    worker: WorkerProcess,
) -> None:
    # Every inference sleeps 0.2 s first. The worker's bucket around it is (0.1, 0.25]: interpolation
    # spreads its observations evenly, so p99 = 0.1 + 0.99 * 0.15 and p50 = 0.175 (bucket resolution);
    # the mean (sum / count) is exact, just above 0.2 s.
    worker.fault("latency", latency_s=0.2, rate=1.0)
    collector = collector_for(worker.url, window=3, latency_p99_max_seconds=0.1)
    load = Load(worker.url + "/v2/models/canary/infer", canary_body(worker), rps=10, seconds=8)
    thread = load.start()
    time.sleep(3.5)  # steady state: the 3 s window only sees the load from here on
    figures = scrape_while(load, collector, every=0.75)
    qps = figures["gpuwarden_inference_requests_per_second"]
    assert qps == pytest.approx(10, rel=0.2)
    assert 0.2 <= figures["gpuwarden_inference_latency_seconds{0.99}"] <= 0.25
    assert 0.1 < figures["gpuwarden_inference_latency_seconds{0.5}"] <= 0.25
    assert 0.2 <= figures["gpuwarden_inference_latency_mean_seconds"] <= 0.23
    assert 2.0 <= figures["gpuwarden_inference_window_seconds"] <= 3.0
    assert figures["gpuwarden_inference_error_ratio"] == 0
    thread.join()
    assert set(load.statuses) == {200} and min(load.latencies) >= 0.2
    _, health = collect(collector)
    (latency,) = [h for h in health if h.component == "inference.latency"]
    assert latency.state == State.DEGRADED and "above 0.1s" in latency.reason


def test_a_worker_restart_loses_no_requests_and_gives_no_negative_rate(tmp_path: Path) -> None:
    port = free_port()
    listen = ("--listen", f"127.0.0.1:{port}")
    collector = collector_for(f"http://127.0.0.1:{port}", window=120, unhealthy_after_failures=2)
    with WorkerProcess(tmp_path, *listen) as first:
        body = canary_body(first)
        collect(collector)
        for _ in range(50):
            requests.post(first.url + "/v2/models/canary/infer", json=body, timeout=5).raise_for_status()
        before, _ = collect(collector)
    assert before["gpuwarden_inference_requests_per_second"] > 0
    states = []
    for _ in range(2):
        down, health = collect(collector)
        states += [h.state for h in health if h.component == "inference.target"]
    assert states == [State.UNKNOWN, State.UNHEALTHY] and down["gpuwarden_inference_up"] == 0
    with WorkerProcess(tmp_path, *listen, model_dir=tmp_path / "model") as second:
        for _ in range(20):
            requests.post(second.url + "/v2/models/canary/infer", json=body, timeout=5).raise_for_status()
        after, health = collect(collector)
    assert after["gpuwarden_inference_server_restarts_total"] == 1
    # 50 requests before the restart and 20 after: none lost, none counted twice, nothing negative.
    requests_in_window = (
        after["gpuwarden_inference_requests_per_second"] * after["gpuwarden_inference_window_seconds"]
    )
    assert requests_in_window == pytest.approx(70)
    assert all(v >= 0 for v in after.values())
    assert [h.state for h in health if h.component == "inference.target"] == [State.HEALTHY]
