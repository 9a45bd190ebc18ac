"""Network collector cost per cycle: gpuwarden's `network` collector against node_exporter's, same run.

node_exporter (Debian's prometheus-node-exporter) runs on loopback twice: with only `netdev` (counters, the
figure the design asks for) and with `netdev` + `netclass` (counters plus /sys/class/net link state and speed,
which is what our collector also reads). Its own `node_scrape_collector_duration_seconds{collector}` is the
peer's cost per cycle: the time inside the collector, without HTTP. Ours is the time of one `collect()` on
the same host's /proc and /sys (no peers, no InfiniBand unless the host has it), measured in-process with
perf_counter. Cycles are interleaved so both see the same machine state. Prints p50/p99 and the ratios.
Usage: python bench/network.py [--cycles 300]
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpuwarden.agent.registry import CollectorContext  # noqa: E402
from gpuwarden.collectors.network import NetworkCollector  # noqa: E402
from gpuwarden.config import AgentConfig  # noqa: E402
from tests.golden import exposition, split  # noqa: E402
from tests.integration.agent_process import free_port  # noqa: E402

NODE_EXPORTER = "prometheus-node-exporter"
DURATION = re.compile(r'^node_scrape_collector_duration_seconds\{collector="(\w+)"\} (\S+)$', re.MULTILINE)


def start_exporter(collectors: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    # Same interface set as ours: node_exporter's netdev drops lo by default, we keep it.
    args = [NODE_EXPORTER, "--collector.disable-defaults", f"--web.listen-address=127.0.0.1:{port}"]
    args += [f"--collector.{c}" for c in collectors] + ["--collector.netdev.device-exclude=^$"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{NODE_EXPORTER} did not come up on {url}")


def exporter_cost(session: requests.Session, url: str) -> float:
    """Seconds node_exporter spent inside its collectors for one scrape (sum over the enabled ones)."""
    return sum(float(v) for _, v in DURATION.findall(session.get(url, timeout=5).text))


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=300)
    args = parser.parse_args()
    if shutil.which(NODE_EXPORTER) is None:
        raise SystemExit(f"{NODE_EXPORTER} not found: apt-get install prometheus-node-exporter")

    cfg = AgentConfig()
    ctx = CollectorContext(cfg.paths.paths(), logging.getLogger("bench"))
    ours = NetworkCollector(cfg.collector_settings("network"), ctx)
    netdev, netdev_url = start_exporter(["netdev"])
    both, both_url = start_exporter(["netdev", "netclass"])
    session = requests.Session()
    timings: dict[str, list[float]] = {"ours": [], "ours+render": [], "netdev": [], "netdev+netclass": []}
    try:
        for _ in range(20):  # warm-up: page cache, JIT-free but allocator and sockets settle
            list(ours.collect())
            exporter_cost(session, netdev_url)
            exporter_cost(session, both_url)
        for _ in range(args.cycles):
            t0 = time.perf_counter()
            items = list(ours.collect())
            t1 = time.perf_counter()
            exposition(split(items)[0])
            t2 = time.perf_counter()
            timings["ours"].append(t1 - t0)
            timings["ours+render"].append(t2 - t0)
            timings["netdev"].append(exporter_cost(session, netdev_url))
            timings["netdev+netclass"].append(exporter_cost(session, both_url))
    finally:
        for proc in (netdev, both):
            proc.terminate()
            proc.wait(timeout=10)
        ours.close()

    series = sum(len(m.samples) for m in split(items)[0])
    print(f"network collector cost per cycle, {args.cycles} cycles, {series} series from this host")
    print(f"{'':18}{'p50 ms':>10}{'p99 ms':>10}")
    for name, values in timings.items():
        print(f"{name:18}{pct(values, 50) * 1e3:10.3f}{pct(values, 99) * 1e3:10.3f}")
    for peer in ("netdev", "netdev+netclass"):
        ratio50 = pct(timings["ours"], 50) / pct(timings[peer], 50)
        ratio99 = pct(timings["ours"], 99) / pct(timings[peer], 99)
        print(f"ratio ours / node_exporter {peer}: p50 {ratio50:.2f}x  p99 {ratio99:.2f}x")


if __name__ == "__main__":
    main()
