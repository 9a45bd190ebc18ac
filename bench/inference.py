"""Cost of one business collection, against two peers, on the same endpoint in the same run.

The target serves a vLLM-shaped exposition of an 8-engine server (the vLLM capture in
tests/fixtures/inference replicated per `engine` label, as vLLM V1 labels data-parallel engines), over
loopback HTTP. Measured, interleaved, `--runs` times each:
- ours: `InferenceCollector.collect()` (fetch, keep the profile's sample lines, parse those, window,
  derive); its series are parsed once and remembered, as in the agent, which scrapes the same server;
- peer A: the same pipeline parsing the whole exposition with prometheus_client, as a Python scraper that
  does not filter would;
- peer B: Debian's Prometheus scraping the same endpoint every second (`scrape_duration_seconds`, which
  covers fetch and parse in Go plus the append to its TSDB), when it is installed.
Prints p50/p99 wall time and CPU per collection, and the ratios.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpuwarden.agent.registry import CollectorContext  # noqa: E402
from gpuwarden.collectors.inference import InferenceCollector  # noqa: E402
from gpuwarden.collectors.inference.exposition import Exposition, fetch  # noqa: E402
from gpuwarden.collectors.inference.profiles import VLLM  # noqa: E402
from gpuwarden.collectors.inference.settings import InferenceSettings  # noqa: E402
from gpuwarden.collectors.inference.signals import derive, observe  # noqa: E402
from gpuwarden.collectors.inference.window import Window  # noqa: E402
from gpuwarden.config import AgentConfig  # noqa: E402
from tests.integration.agent_process import free_port  # noqa: E402

CAPTURE = ROOT / "tests" / "fixtures" / "inference" / "vllm-1.prom"


def eight_engines(text: str, engines: int = 8) -> bytes:
    """Each vllm:* family's samples repeated once per engine label; other families unchanged."""
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        samples = [line for line in block if not line.startswith("#")]
        if samples and samples[0].startswith("vllm:"):
            out.extend(line for line in block if line.startswith("#"))
            for e in range(engines):
                out.extend(re.sub(r'engine="\d+"', f'engine="{e}"', s) for s in samples)
        else:
            out.extend(block)
        block.clear()

    for line in text.splitlines():
        if line.startswith("# HELP"):
            flush()
        block.append(line)
    flush()
    return ("\n".join(out) + "\n").encode()


def serve(body: bytes) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as both the agent and Prometheus use it

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/metrics"


class Steps:
    """A clock that advances one default scrape interval per reading."""

    def __init__(self, step: float) -> None:
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49], qs[98]


def prometheus_scrape_durations(url: str, seconds: float) -> list[float] | None:
    if shutil.which("prometheus") is None:
        return None
    tmp = Path(tempfile.mkdtemp())
    target = url.removeprefix("http://").removesuffix("/metrics")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
        "scrape_configs": [{"job_name": "vllm", "static_configs": [{"targets": [target]}]}],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(seconds + 2)
        query = f"scrape_duration_seconds[{int(seconds)}s]"
        answer = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=5)
        (series,) = answer.json()["data"]["result"]
        return [float(v) for _, v in series["values"]][1:]  # the first scrape warms its caches
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--prometheus-seconds", type=float, default=15)
    args = parser.parse_args()

    body = eight_engines(CAPTURE.read_text())
    server, url = serve(body)
    settings = InferenceSettings.model_validate({"enabled": True, "url": url})
    ctx = CollectorContext(paths=AgentConfig().paths.paths(), log=logging.getLogger("bench"))
    # Collections follow each other back to back here, but the window must hold what it holds in
    # production: 60 s of scrapes at the default 15 s interval. A clock that steps 15 s per call does it.
    ours = InferenceCollector(settings, ctx, clock=Steps(7.5))  # read at the start and the end
    session, window, peer_clock = requests.Session(), Window(60), Steps(15.0)

    def peer() -> None:
        exp = Exposition.parse(fetch(session, url, 5))  # every line through the parser
        window.add(observe(exp, VLLM, peer_clock()))
        derive(window, VLLM)

    def ours_once() -> None:
        list(ours.collect())

    timings: dict[str, list[float]] = {"ours": [], "peer": []}
    cpu: dict[str, float] = {"ours": 0.0, "peer": 0.0}
    for fn in (ours_once, peer):  # warm both: connections, regex caches
        fn()
    for _ in range(args.runs):
        for name, fn in (("ours", ours_once), ("peer", peer)):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - t0)
            cpu[name] += time.process_time() - c0

    lines, samples = body.count(b"\n"), sum(1 for line in body.splitlines() if not line.startswith(b"#"))
    print(f"# gpuwarden bench/inference.py — {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"target: vLLM-shaped exposition, 8 engines, {lines} lines, {samples} samples, {len(body)} bytes")
    p50o, p99o = percentiles(timings["ours"])
    p50p, p99p = percentiles(timings["peer"])
    cpu_o, cpu_p = cpu["ours"] / args.runs * 1e3, cpu["peer"] / args.runs * 1e3

    def row(label: str, p50: float, p99: float, cpu_ms: float) -> str:
        return (
            f"{label} ({args.runs} runs): p50 {p50 * 1e3:.3f} ms  p99 {p99 * 1e3:.3f} ms  CPU {cpu_ms:.3f} ms"
        )

    print(row("peer A  full prometheus_client parse", p50p, p99p, cpu_p))
    print(row("ours    collect(), profile parse    ", p50o, p99o, cpu_o))
    print(
        f"ratio   ours/peer A: p50 {p50o / p50p:.2f}  p99 {p99o / p99p:.2f}  CPU {cpu_o / cpu_p:.2f}"
        "  (target <= 0.33)"
    )
    durations = prometheus_scrape_durations(url, args.prometheus_seconds)
    if durations is None:
        print("peer B  prometheus not installed: skipped")
    else:
        p50b = statistics.median(durations)
        n, p50_ms, worst = len(durations), p50b * 1e3, max(durations) * 1e3
        print(
            f"peer B  Prometheus scrape_duration_seconds ({n} scrapes): p50 {p50_ms:.3f} ms  max {worst:.3f}"
        )
        print(f"ratio   ours/peer B: p50 {p50o / p50b:.2f}")
    ours.close()
    server.shutdown()


if __name__ == "__main__":
    main()
