"""`make demo`, short version: the whole drill against real ZooKeeper, Prometheus, Alertmanager, the agent
and the reference worker; every expected event is in the timeline JSON, and nothing it started outlives it
(also after Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gpuwarden import config as configmod
from gpuwarden.demo import configs

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "oom": ["inject", "crash", "memory_fraction.trigger", "memory_fraction.attempt",
            "memory_fraction.succeeded", "recovered"],
    "hang": ["inject", "health.engine.probe.UNHEALTHY", "worker_restart.trigger", "worker_restart.succeeded",
             "recovered"],
    "latency": ["inject", "health.inference.latency.DEGRADED", "prometheus.InferenceP99LatencyHigh.firing",
                "alertmanager.InferenceP99LatencyHigh", "scale_signal.trigger", "scale_signal.succeeded",
                "scale.up", "recovered"],
    "zookeeper": ["inject", "health.zookeeper.quorum.DEGRADED", "kill_second",
                  "health.zookeeper.quorum.UNHEALTHY", "worker_restart.denied", "restore",
                  "health.zookeeper.quorum.HEALTHY", "worker_restart.succeeded", "recovered"],
}  # fmt: skip


def demo(out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gpuwarden.demo", "--short", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def ports_of(out: Path) -> list[int]:
    """Every port the demo's services listened on: the agent's, the worker's, ZooKeeper's."""
    agent = yaml.safe_load((out / "agent.yaml").read_text())
    found = [int(agent["agent"]["listen"].rsplit(":", 1)[1])]
    argv = agent["remediation"]["targets"]["worker"]["argv"]
    found.append(int(argv[argv.index("--listen") + 1].rsplit(":", 1)[1]))
    for cfg in (out / "zookeeper").glob("server*/zoo.cfg"):
        found += [int(x.split("=")[1]) for x in cfg.read_text().splitlines() if x.startswith("clientPort=")]
    return found


def assert_all_stopped(out: Path) -> None:
    pid = int((out / "worker.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert [p for p in ports_of(out) if listening(p)] == []


def test_the_short_demo_runs_every_incident_and_writes_the_timeline(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = demo(out)
    stdout, _ = proc.communicate(timeout=280)
    assert proc.returncode == 0, stdout[-4000:]
    doc = json.loads((out / "timeline.json").read_text())
    seen = {(e["incident"], e["step"]) for e in doc["events"]}
    missing = [(i, s) for i, steps in EXPECTED.items() for s in steps if (i, s) not in seen]
    assert missing == [], stdout[-4000:]
    assert not [e for e in doc["events"] if e["step"] == "timeout"]
    rows = {r["incident"]: r for r in doc["table"]}
    assert sorted(rows) == sorted(EXPECTED)
    for row in rows.values():
        assert row["detected_after_s"] is not None and row["recovered_after_s"] is not None, row
        assert 0 <= row["detected_after_s"] <= row["recovered_after_s"], row
    assert rows["zookeeper"]["held_back"] >= 1
    assert doc["gpu"]["source"] == "replay" and "REPLAY" in doc["gpu"]["label"]
    routed = next(e for e in doc["events"] if e["step"] == "alertmanager.InferenceP99LatencyHigh")
    assert routed["data"]["labels"]["gpu_source"] == "replay"  # in Prometheus and Alertmanager too
    assert doc["samples"] and any(s["p99_latency_s"] for s in doc["samples"])
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "REPLAY" in stdout and "Detection and recovery" in stdout
    assert_all_stopped(out)


def test_ctrl_c_stops_everything_the_demo_started(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = demo(out)
    assert proc.stdout is not None
    deadline = time.monotonic() + 150
    for line in proc.stdout:
        if "Incident 1" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, rest[-3000:]
    assert "interrupted: stopping everything" in rest
    assert_all_stopped(out)


def test_the_demo_configs_pass_the_agent_schema_promtool_and_amtool(tmp_path: Path) -> None:
    ports = configs.Ports(19837, 18000, 19090, 19093, 19094)
    hosts = ["127.0.0.1:12181", "127.0.0.1:12182", "127.0.0.1:12183"]
    for sub in ("prometheus", "alertmanager"):
        (tmp_path / sub).mkdir()
    agent = configs.write_all(tmp_path, ROOT, ports, hosts, configs.SHORT)
    configmod.load(str(agent))  # what the agent does at start: exit 78 on any problem
    prom = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus" / "prometheus.yml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert prom.returncode == 0, prom.stdout + prom.stderr
    am = subprocess.run(
        ["amtool", "check-config", str(tmp_path / "alertmanager" / "alertmanager.yml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert am.returncode == 0, am.stdout + am.stderr
    rules = (tmp_path / "prometheus" / "rules" / "inference.yml").read_text()
    assert "for: 10s" in rules  # the demo's InferenceP99LatencyHigh window, said in its banner
    assert any("latency_for: 5m -> 10s" in line for line in configs.changes(configs.SHORT))
