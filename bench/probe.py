"""The engine probe's own overhead on the reference worker, against curl, the usual shell canary.

A node-level canary is most often a cron or exec-probe `curl -X POST .../v2/models/<m>/infer` with a
golden-answer check in the script. The peer here is that curl call (a process per probe, its CPU read
from the children's rusage); ours is one `EngineCollector.collect()` with the http backend (readiness
check, infer, golden comparison, exposition families) and with the onnxruntime backend, both in its
child process (the default: the child's CPU is not counted, its wall time is) and in the agent. All
probe the same worker, interleaved, in the same run. Prints p50/p99 wall time and CPU per probe,
and the ratios against curl. The worker runs in its own process, so its CPU is not counted for anyone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpuwarden.agent.registry import CollectorContext  # noqa: E402
from gpuwarden.collectors.engine.collector import EngineCollector  # noqa: E402
from gpuwarden.collectors.engine.settings import EngineSettings  # noqa: E402
from gpuwarden.health import HealthResult, State  # noqa: E402
from gpuwarden.paths import Paths  # noqa: E402
from tests.integration.worker_process import WorkerProcess  # noqa: E402


def ours(worker: WorkerProcess, backend: str, isolate: bool = True) -> tuple[Callable[[], None], bool, Any]:
    """(probe, False: its CPU is this process's, its backend)."""
    settings = EngineSettings.model_validate(
        {
            "enabled": True,
            "backend": backend,
            "model_dir": str(worker.model_dir),
            "kernel_latency": "off",
            "isolate": isolate,
            "http": {"url": worker.url},
        }
    )
    collector = EngineCollector(settings, CollectorContext(Paths(), logging.getLogger("bench")))

    def probe() -> None:
        health = [i for i in collector.collect() if isinstance(i, HealthResult)]
        assert health[0].state == State.HEALTHY, health[0].reason

    return probe, False, collector.backend


def child_cpu(backend: Any) -> float:
    """CPU seconds used so far by an isolated backend's probe process (0 for in-agent backends)."""
    pid = getattr(backend, "pid", None)
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def curl(worker: WorkerProcess, body: Path) -> Callable[[], None]:
    argv = ["curl", "-sf", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", f"@{body}"]
    argv.append(f"{worker.url}/v2/models/canary/infer")

    def probe() -> None:
        out = subprocess.run(argv, capture_output=True, check=True).stdout
        assert json.loads(out)["outputs"]  # the script's golden check would follow; curl's part ends here

    return probe


def measure(fn: Callable[[], None], children: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call; CPU of child processes for the peer, of this one for ours."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    r0, t0 = resource.getrusage(who), time.perf_counter()
    fn()
    wall, r1 = time.perf_counter() - t0, resource.getrusage(who)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probes", type=int, default=300, help="probes per contender")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed (Debian package curl)")
    tmp = Path(tempfile.mkdtemp(prefix="probe-bench-"))
    with WorkerProcess(tmp) as worker:
        canary = json.loads((worker.model_dir / "canary.json").read_text())
        body = tmp / "body.json"
        body.write_text(json.dumps({"inputs": canary["inputs"]}))
        # name → (probe, CPU in child processes (curl), backend whose probe process CPU counts)
        contenders: dict[str, tuple[Callable[[], None], bool, Any]] = {
            "curl (peer)": (curl(worker, body), True, None),
            "gpuwarden http": ours(worker, "http"),
            "gpuwarden onnxruntime": ours(worker, "onnxruntime"),
            "  same, in the agent": ours(worker, "onnxruntime", isolate=False),
        }
        results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in contenders}
        for fn, children, _ in contenders.values():  # warm-up: sessions, imports, model load
            for _ in range(5):
                measure(fn, children)
        child_before = {name: child_cpu(backend) for name, (_, _, backend) in contenders.items()}
        for _ in range(args.probes):  # interleaved, so drift on the machine hits everyone alike
            for name, (fn, children, _) in contenders.items():
                wall, cpu = measure(fn, children)
                results[name][0].append(wall)
                results[name][1].append(cpu)
        for name, (_, _, backend) in contenders.items():  # an isolated probe's child CPU counts too
            extra = (child_cpu(backend) - child_before[name]) / args.probes
            results[name] = (results[name][0], [cpu + extra for cpu in results[name][1]])
    peer_wall = statistics.median(results["curl (peer)"][0])
    peer_cpu = statistics.mean(results["curl (peer)"][1])
    print(f"engine probe overhead, {args.probes} probes each, reference worker on loopback")
    print(
        f"{'contender':<24}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/probe':>14}{'p50 ratio':>11}{'CPU ratio':>11}"
    )
    for name, (walls, cpus) in results.items():
        p50, cpu = statistics.median(walls), statistics.mean(cpus)
        print(
            f"{name:<24}{p50 * 1e3:>9.2f}{pct(walls, 99) * 1e3:>9.2f}{cpu * 1e3:>14.2f}"
            f"{p50 / peer_wall:>11.2f}{cpu / peer_cpu:>11.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
