"""The real agent scraping a hostile inference target: its memory stays flat, /metrics stays fast, and the
other collectors stay fresh, while the target sends an endless body, a gzip bomb, a 50 MB page or trickles.

The figures (RSS over the baseline, the slowest scrape, the oldest node collection) are printed: run with
`pytest -s` to read them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.hostile_target import HostileTarget
from tests.integration.agent_process import AgentProcess, free_port, only_collectors

pytestmark = pytest.mark.integration

INTERVAL = 1.0
MODES = ("endless", "gzip-bomb", "big", "many-series", "trickle")
SECONDS_PER_MODE = 6.0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def series(text: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + "".join(f"{{{v}}}" for _, v in sorted(s.labels.items()))
            out[key] = s.value
    return out


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[AgentProcess, HostileTarget, str]]:
    target = HostileTarget()
    port = free_port()
    inference = {
        "profile": "vllm",
        "url": target.url("metrics"),
        "interval": INTERVAL,
        "timeout": 4,
        "scrape_timeout": 3,
        "window": 4,
    }
    config = {
        "agent": {"listen": f"127.0.0.1:{port}"},
        "collectors": only_collectors({"inference": inference, "node": {"interval": INTERVAL, "timeout": 2}}),
    }
    process = AgentProcess(tmp_path, config)
    try:
        process.wait_message("READY=1")
        yield process, target, f"http://127.0.0.1:{port}"
    finally:
        process.stop()
        target.close()


def watch(proc: AgentProcess, url: str, seconds: float) -> dict[str, float]:
    """Scrape for `seconds`; the peak RSS, the slowest scrape and the oldest node collection seen."""
    session = requests.Session()
    peak, slowest, stalest, last = 0.0, 0.0, 0.0, {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        text = session.get(f"{url}/metrics", timeout=10).text
        slowest = max(slowest, time.monotonic() - start)
        last = series(text)
        age = time.time() - last["gpuwarden_collector_last_success_timestamp_seconds{node}"]
        stalest = max(stalest, age)
        peak = max(peak, rss_mb(proc.proc.pid))
        time.sleep(0.05)
    wanted = ("gpuwarden_inference_up", "gpuwarden_collector_success")
    figures = {"peak_rss_mb": peak, "slowest_scrape_s": slowest, "stalest_node_s": stalest}
    return figures | {k: v for k, v in last.items() if k.startswith(wanted)}


def test_a_hostile_inference_target_never_hurts_the_agent(
    agent: tuple[AgentProcess, HostileTarget, str],
) -> None:
    proc, target, url = agent
    baseline = watch(proc, url, 4.0)
    assert baseline["gpuwarden_inference_up"] == 1
    base_rss = baseline["peak_rss_mb"]
    print(f"\nbaseline: RSS {base_rss:.1f} MB, slowest scrape {baseline['slowest_scrape_s'] * 1000:.1f} ms")
    for mode in MODES:
        target.mode = mode
        seen = watch(proc, url, SECONDS_PER_MODE)
        grown = seen["peak_rss_mb"] - base_rss
        print(
            f"{mode:>10}: RSS peak +{grown:.1f} MB, slowest scrape {seen['slowest_scrape_s'] * 1000:.1f} ms, "
            f"node collection at most {seen['stalest_node_s']:.2f} s old, inference_up "
            f"{seen['gpuwarden_inference_up']:g}"
        )
        assert seen["gpuwarden_inference_up"] == 0
        assert grown < 50, f"{mode}: RSS grew by {grown:.0f} MB"
        assert seen["slowest_scrape_s"] < 1.0, f"{mode}: a scrape took {seen['slowest_scrape_s']:.2f} s"
        # Fresh: the node collector ran within its last three intervals all along.
        assert seen["stalest_node_s"] < 3 * INTERVAL, (
            f"{mode}: node series {seen['stalest_node_s']:.1f} s old"
        )
        assert seen["gpuwarden_collector_success{node}"] == 1
    health = requests.get(f"{url}/health", timeout=5).json()
    target_health = next(c for c in health["components"] if c["component"] == "inference.target")
    assert target_health["state"] in ("UNKNOWN", "UNHEALTHY") and "scrape_timeout" in target_health["reason"]
