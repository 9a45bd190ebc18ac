"""On a GPU node: start the real agent with only the gpu collector, scrape it, stop it.

`python bench/gpu_agent_smoke.py OUT_DIR` writes OUT_DIR/agent-metrics.txt (the /metrics body after a few
cycles), OUT_DIR/agent-health.json and OUT_DIR/agent-stderr.txt, and prints a summary: the check that the
daemon, the NVML thread, the XID event thread and the kernel-log reader work together on real hardware.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

import gpuwarden.collectors  # noqa: E402, F401  (fills the registry)
from gpuwarden.agent.registry import REGISTRY  # noqa: E402


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    collectors = {name: {"enabled": name == "gpu"} for name in REGISTRY}
    collectors["gpu"].update({"interval": 1.0, "slow_interval": 5.0})
    config = out / "agent.yaml"
    config.write_text(yaml.safe_dump({"agent": {"listen": f"127.0.0.1:{port}"}, "collectors": collectors}))
    stderr = (out / "agent-stderr.txt").open("wb")
    agent = subprocess.Popen(
        [sys.executable, "-m", "gpuwarden", "agent", "--config", str(config)], stderr=stderr
    )
    try:
        time.sleep(8)
        base = f"http://127.0.0.1:{port}"
        metrics = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
        health = json.loads(urllib.request.urlopen(f"{base}/health", timeout=5).read())
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(15)
        stderr.close()
    (out / "agent-metrics.txt").write_text(metrics)
    (out / "agent-health.json").write_text(json.dumps(health, indent=1) + "\n")
    gpu_lines = [line for line in metrics.splitlines() if line.startswith("gpuwarden_gpu_")]
    print(f"agent exit code after SIGTERM: {code}")
    print(f"gpuwarden_gpu_* samples: {len(gpu_lines)}")
    for line in metrics.splitlines():
        if line.startswith(
            (
                "gpuwarden_gpu_xid_source_up",
                "gpuwarden_gpu_nvml_up",
                "gpuwarden_collector_success",
                "gpuwarden_collector_duration_seconds",
            )
        ):
            print(line)
    for c in health["components"]:
        if c["component"].startswith("gpu"):
            print(f"{c['component']:<16} {c['state']:<10} {c['reason']}")
    return 0 if code == 0 and gpu_lines else 1


if __name__ == "__main__":
    sys.exit(main())
