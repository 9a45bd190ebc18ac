"""Scrape latency: gpuwarden's /metrics against Debian's prometheus-node-exporter, same machine, same run.

Both run on loopback. gpuwarden exposes at least 500 samples (node collector plus a textfile of synthetic
per-GPU series shaped like an 8-GPU node's). The two are scraped the same number of times, interleaved, the
way Prometheus scrapes (keep-alive, gzip accepted). Prints p50/p99 of each and the p99 ratio.
Target (the foundation issue): gpuwarden's p99 at most a quarter of node_exporter's.
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


def synthetic_textfile(directory: Path, gpus: int = 8, families: int = 64) -> None:
    """`families` gauges × `gpus` labelled series: the shape of a GPU collector's output on an 8-GPU node."""
    lines = []
    for f in range(families):
        name = f"bench_gpu_signal_{f}"
        lines += [f"# HELP {name} Synthetic per-GPU signal {f}.", f"# TYPE {name} gauge"]
        lines += [f'{name}{{gpu="{g}",uuid="GPU-{g:08x}"}} {f * 1.5 + g}' for g in range(gpus)]
    (directory / "bench.prom").write_text("\n".join(lines) + "\n")


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
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
        synthetic_textfile(tmp)
        ours_port, theirs_port = free_port(), free_port()
        config = {
            "agent": {"listen": f"127.0.0.1:{ours_port}", "log_level": "warning"},
            "collectors": only_collectors({"node": {}, "textfile": {"directory": str(tmp)}}),
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
            if counts["gpuwarden"] < 500:
                raise SystemExit(f"gpuwarden exposes only {counts['gpuwarden']} samples; the bench needs 500")
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
    print(f"scrape latency, {args.scrapes} interleaved scrapes each, keep-alive, gzip, loopback")
    for name, values in latencies.items():
        print(
            f"  {name:14s} samples={counts[name]:5d}  p50={pct(values, 50) * 1e3:7.3f} ms"
            f"  p99={pct(values, 99) * 1e3:7.3f} ms"
        )
    ratio = pct(ours, 99) / pct(theirs, 99)
    print(f"  ratio p99 gpuwarden / node_exporter = {ratio:.3f}  (target <= 0.25)")
    print(f"  ratio p50 gpuwarden / node_exporter = {pct(ours, 50) / pct(theirs, 50):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
