"""Scrape latency: gpuwarden's /metrics against Debian's prometheus-node-exporter, same machine, same run.

Both run on loopback. gpuwarden runs its node collector and its GPU collector on an 8-GPU replay (the
H200 recording repeated per GPU, tests/fixtures/nvml/derive_gpus.py), collecting every second while it is
scraped, so scrapes meet collections as they do on a node; it must expose at least 600 samples. The two
are scraped the same number of times, interleaved, the way Prometheus scrapes (keep-alive, gzip accepted).
Prints p50/p99 of each and the p99 ratio. Target (issue 15): gpuwarden's p99 at most 0.15 of
node_exporter's.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.agent_process import free_port, only_collectors  # noqa: E402

NODE_EXPORTER = "prometheus-node-exporter"


REPLAY = ROOT / "tests" / "fixtures" / "nvml" / "h200x8-busy.json"
MIN_SAMPLES = 600


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=1)
            if response.status_code == 200 and response.content:  # empty until the first collection
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up within {timeout}s")


def samples(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scrapes", type=int, default=1000, help="scrapes of each target")
    args = parser.parse_args()
    if shutil.which(NODE_EXPORTER) is None:
        raise SystemExit(f"{NODE_EXPORTER} is not installed (Debian package prometheus-node-exporter)")
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ours_port, theirs_port = free_port(), free_port()
        gpu = {"backend": "replay", "replay_file": str(REPLAY), "interval": 1, "slow_interval": 5}
        config = {
            "agent": {"listen": f"127.0.0.1:{ours_port}", "log_level": "warning"},
            "collectors": only_collectors({"node": {"interval": 1}, "gpu": {**gpu, "kmsg": False}}),
        }
        (tmp / "agent.yaml").write_text(yaml.safe_dump(config))
        try:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "gpuwarden", "agent", "--config", str(tmp / "agent.yaml")]
                )
            )
            procs.append(
                subprocess.Popen(
                    [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{theirs_port}"],
                    stderr=subprocess.DEVNULL,
                )
            )
            targets = {
                "gpuwarden": f"http://127.0.0.1:{ours_port}/metrics",
                "node_exporter": f"http://127.0.0.1:{theirs_port}/metrics",
            }
            for url in targets.values():
                wait_http(url)
            sessions = {name: requests.Session() for name in targets}
            counts = {name: samples(sessions[name].get(url).text) for name, url in targets.items()}
            if counts["gpuwarden"] < MIN_SAMPLES:
                raise SystemExit(
                    f"gpuwarden exposes {counts['gpuwarden']} samples; the bench needs {MIN_SAMPLES}"
                )
            latencies: dict[str, list[float]] = {name: [] for name in targets}
            for _ in range(20):  # warm-up
                for name, url in targets.items():
                    sessions[name].get(url, headers={"Accept-Encoding": "gzip"})
            for _ in range(args.scrapes):
                for name, url in targets.items():
                    start = time.perf_counter()
                    response = sessions[name].get(url, headers={"Accept-Encoding": "gzip"})
                    _ = response.content
                    latencies[name].append(time.perf_counter() - start)
                    assert response.status_code == 200
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
    ours, theirs = latencies["gpuwarden"], latencies["node_exporter"]
    print(f"# gpuwarden bench/scrape.py — {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"scrape latency, {args.scrapes} interleaved scrapes each, keep-alive, gzip, loopback;")
    print(f"gpuwarden: node + gpu collectors every 1 s, GPU replay {REPLAY.name}")
    for name, values in latencies.items():
        print(
            f"  {name:14s} samples={counts[name]:5d}  p50={pct(values, 50) * 1e3:7.3f} ms"
            f"  p99={pct(values, 99) * 1e3:7.3f} ms"
        )
    ratio = pct(ours, 99) / pct(theirs, 99)
    print(f"  ratio p99 gpuwarden / node_exporter = {ratio:.3f}  (target <= 0.15)")
    print(f"  ratio p50 gpuwarden / node_exporter = {pct(ours, 50) / pct(theirs, 50):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
