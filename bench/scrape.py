"""Scrape latency: gpuwarden's /metrics against Debian's prometheus-node-exporter, same machine, same run.

Both run on loopback. gpuwarden runs its node collector and its GPU collector on an 8-GPU replay (the
H200 recording repeated per GPU, tests/fixtures/nvml/derive_gpus.py), collecting every second while it is
scraped, so scrapes meet collections as they do on a node; it must expose at least 600 samples. The two
are scraped the same number of times, interleaved, the way Prometheus scrapes (keep-alive, gzip accepted).
Prints p50/p99 of each and the p99 ratio. Target (issue 15): gpuwarden's p99 at most 0.15 of
node_exporter's.

`--clients 500` adds a burst: that many keep-alive scrapers connect at once and scrape `--rounds` times each,
against each target in turn; prints connect and scrape p50/p99, connect timeouts and errors (issue 16: the
stdlib's listen backlog of 5 made 200-500 scrapers wait ~1 s to connect, some 26 s).
"""

from __future__ import annotations

import argparse
import asyncio
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


async def _scraper(
    host: str, port: int, rounds: int, start: asyncio.Event, connects: list[float], scrapes: list[float]
) -> str | None:
    """One keep-alive client: connect (10 s limit), then `rounds` gzip scrapes; the error, or None."""
    await start.wait()
    began = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    except TimeoutError:
        return "connect timeout"
    except OSError as err:
        return f"connect: {err.strerror}"
    connects.append(time.perf_counter() - began)
    request = f"GET /metrics HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip\r\n\r\n".encode()
    try:
        for _ in range(rounds):
            began = time.perf_counter()
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            if not head.startswith(b"HTTP/1.1 200"):
                return head.split(b"\r\n", 1)[0].decode()
            await asyncio.wait_for(_read_body(reader, head), 10)
            scrapes.append(time.perf_counter() - began)
    except (TimeoutError, OSError, asyncio.IncompleteReadError) as err:
        return f"scrape: {type(err).__name__}"
    finally:
        writer.close()
    return None


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> None:
    """Content-Length or chunked (node_exporter's Go server chunks larger bodies)."""
    fields = dict(line.lower().split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
    if b"content-length" in fields:
        await reader.readexactly(int(fields[b"content-length"]))
        return
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        await reader.readexactly(size + 2)
    await reader.readuntil(b"\r\n")


async def _burst(url: str, clients: int, rounds: int) -> tuple[list[float], list[float], list[str]]:
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    start = asyncio.Event()
    connects: list[float] = []
    scrapes: list[float] = []
    tasks = [
        asyncio.create_task(_scraper(host, int(port), rounds, start, connects, scrapes))
        for _ in range(clients)
    ]
    await asyncio.sleep(0.1)
    start.set()  # all at once: a burst of SYNs, as Prometheus replicas and federation produce
    errors = [e for e in await asyncio.gather(*tasks) if e]
    return connects, scrapes, errors


def burst(targets: dict[str, str], clients: int, rounds: int) -> None:
    print(f"burst: {clients} keep-alive scrapers connecting at once, {rounds} scrapes each, loopback")
    results = {}
    for name, url in targets.items():
        connects, scrapes, errors = asyncio.run(_burst(url, clients, rounds))
        results[name] = scrapes
        timeouts = sum(e == "connect timeout" for e in errors)
        connect = f"connect p50={pct(connects, 50) * 1e3:6.1f} ms p99={pct(connects, 99) * 1e3:6.1f} ms"
        scrape = f"scrape p50={pct(scrapes, 50) * 1e3:6.1f} ms p99={pct(scrapes, 99) * 1e3:6.1f} ms"
        print(
            f"  {name:14s} {connect}  {scrape}  connect timeouts={timeouts}  errors={len(errors) - timeouts}"
        )
    ours, theirs = results["gpuwarden"], results["node_exporter"]
    print(f"  ratio scrape p99 gpuwarden / node_exporter = {pct(ours, 99) / pct(theirs, 99):.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scrapes", type=int, default=1000, help="scrapes of each target")
    parser.add_argument("--clients", type=int, default=0, help="also run a burst of this many scrapers")
    parser.add_argument("--rounds", type=int, default=10, help="scrapes per client in the burst")
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
            deadline = time.monotonic() + 30  # the agent serves before its first collection has finished
            ours_url = targets["gpuwarden"]
            while (
                samples(sessions["gpuwarden"].get(ours_url).text) < MIN_SAMPLES
                and time.monotonic() < deadline
            ):
                time.sleep(0.2)
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
            if args.clients:
                burst(targets, args.clients, args.rounds)
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
