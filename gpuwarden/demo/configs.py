"""Everything the demo writes before it starts anything: the agent's config, the alert rules with the demo's
shortened `for:` windows, Prometheus' and Alertmanager's configs, token files.

The rules and both configs come from the same generators as deploy/ (`gpuwarden rules build`); the demo
changes only what a drill on one machine must change, and `changes()` lists each one so the output says so.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpuwarden.alert_rules import build
from gpuwarden.alert_rules.mixin import Mixin
from gpuwarden.alert_rules.routing import AGENTS, PAGER, TICKETS, Deployment, alertmanager, prometheus

NODE = "demo-node-1"  # this agent's fleet name, and the `instance` label Prometheus gives it
CLUSTER = "demo"
REPLAY_FILE = "tests/fixtures/nvml/h200-busy.json"  # an H200 recorded with `gpuwarden gpu record`
REPLAY_LABEL = "REPLAY: recorded H200 (NVML replay fixture), not a live GPU"
MEMORY_FRACTION_VAR = "GPUWARDEN_MEMORY_FRACTION"
WORKER_ADMIN_TOKEN = "demo-worker-admin-token"  # the worker's fault API (loopback only)
STARTUP_GRACE_S = 10.0  # the engine acts on nothing while the worker and the first probes come up


@dataclass(frozen=True)
class Pace:
    """How long the drill waits; `--short` (CI) takes the shorter column."""

    alert_for: str  # InferenceP99LatencyHigh's `for:` in the demo (production: Mixin().latency_for)
    quorum_for: str  # ZooKeeperQuorumAtRisk / ZooKeeperQuorumLost `for:`
    inference_window: float  # the inference collector's sliding window (p99, error ratio)
    settle: float  # quiet seconds between two incidents
    hold_degraded: float  # how long one ZooKeeper server stays down before the second one goes
    hold_no_quorum: float  # how long quorum stays lost after the first held-back restart


FULL = Pace(
    alert_for="30s",
    quorum_for="10s",
    inference_window=15.0,
    settle=8.0,
    hold_degraded=12.0,
    hold_no_quorum=8.0,
)
SHORT = Pace(
    alert_for="10s", quorum_for="5s", inference_window=8.0, settle=3.0, hold_degraded=4.0, hold_no_quorum=0.0
)


def mixin(pace: Pace) -> Mixin:
    return Mixin(
        latency_for=pace.alert_for, quorum_at_risk_for=pace.quorum_for, quorum_lost_for=pace.quorum_for
    )


def changes(pace: Pace) -> list[str]:
    """One line per setting the demo runs differently from production, for the banner."""
    prod, demo = Mixin(), mixin(pace)
    lines = [
        f"alert `for:` {f.name}: {getattr(prod, f.name)} -> {getattr(demo, f.name)}"
        for f in dataclasses.fields(Mixin)
        if getattr(prod, f.name) != getattr(demo, f.name)
    ]
    return [
        f"Prometheus scrape and rule evaluation every 1s (production: {Deployment().scrape_interval})",
        *lines,
        "Alertmanager group_wait 1s (production: 10s to the agents, 30s to people)",
        "Alertmanager pages and tickets go to the demo's local inbox instead of PagerDuty and Slack",
        "Prometheus scrapes the agent at a fixed address (production finds agents in ZooKeeper, which this "
        'drill takes down) and labels its series and alerts gpu_source="replay"',
        "remediation rails: grace 8s, no cool-down, 10 attempts per hour (production: 60s, 300s, 3)",
    ]


@dataclass(frozen=True)
class Ports:
    agent: int
    worker: int
    prometheus: int
    alertmanager: int
    inbox: int


def collectors(enabled: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A `collectors:` section with exactly `enabled` on, whatever else is registered."""
    import gpuwarden.collectors  # noqa: F401  (fills the registry)
    from gpuwarden.agent.registry import REGISTRY

    # The product's collectors only: a collector registered by other code in this process is not in the
    # agent's schema.
    section: dict[str, dict[str, Any]] = {
        name: {"enabled": False}
        for name, spec in REGISTRY.items()
        if spec.implementation.startswith("gpuwarden.")
    }
    for name, settings in enabled.items():
        section[name] = {"enabled": True, **settings}
    return section


def rails() -> dict[str, Any]:
    return {
        "grace_s": 8, "cooldown_s": 0, "backoff_initial_s": 1, "backoff_max_s": 5, "max_attempts": 10,
        "flap_max": 10, "verify_timeout_s": 30, "step_timeout_s": 60,
    }  # fmt: skip


def agent_config(out: Path, repo: Path, ports: Ports, zk_hosts: list[str], pace: Pace) -> dict[str, Any]:
    worker = f"http://127.0.0.1:{ports.worker}"
    model_dir = out / "model"
    playbooks: dict[str, Any] = {
        # A worker that died of CUDA OOM (its log says so) comes back with less GPU memory.
        "memory_fraction": {"enabled": True, "triggers": [{"kind": "exit"}], "rails": rails()},
        # A canary that keeps failing (hung or broken engine) gets the worker restarted.
        "worker_restart": {
            "enabled": True,
            "triggers": [{"kind": "health", "component": "engine.probe", "for_s": 3}],
            "rails": rails(),
        },
        # InferenceP99LatencyHigh, posted by Alertmanager to /v1/alerts, asks the fleet for capacity.
        "scale_signal": {
            "enabled": True,
            "triggers": [{"kind": "alert", "alertname": "InferenceP99LatencyHigh"}],
            "signal_file": str(out / "scale-signal.json"),
            "decision_cooldown_s": 60,
            "rails": rails(),
        },
    }
    config: dict[str, Any] = {
        "agent": {"listen": f"127.0.0.1:{ports.agent}"},
        "api": {"token_file": str(out / "api-tokens"), "receivers": [AGENTS]},
        "collectors": collectors(
            {
                "gpu": {"interval": 2, "backend": "replay", "replay_file": str(repo / REPLAY_FILE)},
                "engine": {
                    "interval": 1,
                    "timeout": 4,
                    "backend": "http",
                    "model_dir": str(model_dir),
                    "probe_timeout": 1.5,
                    "failure_threshold": 2,
                    "kernel_latency": "off",
                    "http": {"url": worker},
                },
                "inference": {
                    "interval": 1,
                    "window": pace.inference_window,
                    "profile": "vllm",
                    "url": f"{worker}/metrics",
                    "latency_p99_max_seconds": mixin(pace).latency_slo_seconds,
                },
                "zookeeper": {"interval": 1, "servers": zk_hosts, "ensemble": "demo"},
            }
        ),  # fmt: skip
        "fleet": {
            "enabled": True,
            "hosts": zk_hosts,
            "cluster": CLUSTER,
            "node": NODE,
            "session_timeout": 4,
            "budget": {"max_concurrent": 1, "acquire_timeout": 2},
        },  # fmt: skip
        "remediation": {
            "enabled": True,
            "audit_log": str(out / "audit" / "audit.jsonl"),
            "startup_grace_s": STARTUP_GRACE_S,
            "targets": {
                "worker": {
                    "kind": "process",
                    "argv": [
                        sys.executable,
                        "-m",
                        "gpuwarden",
                        "worker",
                        "--listen",
                        f"127.0.0.1:{ports.worker}",
                        "--model-dir",
                        str(model_dir),
                        "--admin-token-file",
                        str(out / "worker-admin-token"),
                        "--log-file",
                        str(out / "logs" / "worker.log"),
                        "--memory-fraction",
                        f"${{{MEMORY_FRACTION_VAR}}}",
                    ],
                    "env_file": str(out / "worker.env"),
                    "log_file": str(out / "logs" / "worker.log"),
                    "pid_file": str(out / "worker.pid"),
                    "ready_url": f"{worker}/v2/health/ready",
                    "stop_timeout_s": 3,
                    "start_timeout_s": 60,
                }  # fmt: skip
            },
            "playbooks": playbooks,
        },
    }
    return config


def prometheus_config(rule_files: list[str], ports: Ports, job: str) -> dict[str, Any]:
    d = Deployment(alertmanager=f"127.0.0.1:{ports.alertmanager}", scrape_interval="1s")
    config = prometheus(rule_files, d, job)
    config["scrape_configs"] = [
        {
            "job_name": job,
            "static_configs": [
                # Every series and alert from this agent says its GPU is a replay, in Prometheus too.
                {
                    "targets": [f"127.0.0.1:{ports.agent}"],
                    "labels": {"instance": NODE, "gpu_source": "replay"},
                },
            ],
        }
    ]
    return config


def alertmanager_config(m: Mixin, ports: Ports, token_file: Path) -> dict[str, Any]:
    d = Deployment(agents_url=f"http://127.0.0.1:{ports.agent}/v1/alerts", agents_token_file=str(token_file))
    config = alertmanager(build.groups(m), d)
    config["route"]["group_wait"] = "1s"
    for route in config["route"]["routes"]:
        route["group_wait"] = "1s"
    inbox = f"http://127.0.0.1:{ports.inbox}"
    kinds = {PAGER: "page", TICKETS: "ticket"}  # people's receivers post to the demo's inbox instead
    config["receivers"] = [
        {
            "name": r["name"],
            "webhook_configs": [{"url": f"{inbox}/{kinds[r['name']]}", "send_resolved": True}],
        }
        if r["name"] in kinds
        else r
        for r in config["receivers"]
    ]
    return config


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=1000)


def write_secret(path: Path, text: str) -> None:
    path.write_text(text + "\n")
    path.chmod(0o600)


def write_all(out: Path, repo: Path, ports: Ports, zk_hosts: list[str], pace: Pace) -> Path:
    """Write every file; returns the agent's config path."""
    m = mixin(pace)
    for rel, text in build.render(m).items():  # the same renderer as `gpuwarden rules build`
        if rel.startswith("prometheus/rules/"):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text(text)
    rule_files = sorted(str(p) for p in (out / "prometheus" / "rules").glob("*.yml"))
    token = "demo-alertmanager-token-0123456789abcdef"
    write_secret(out / "alertmanager-token", token)
    write_secret(out / "api-tokens", f"alertmanager:{token}")
    write_secret(out / "worker-admin-token", WORKER_ADMIN_TOKEN)
    (out / "worker.env").write_text(f"{MEMORY_FRACTION_VAR}=0.9\n")
    (out / "prometheus" / "prometheus.yml").write_text(_yaml(prometheus_config(rule_files, ports, m.job)))
    (out / "alertmanager").mkdir(exist_ok=True)
    (out / "alertmanager" / "alertmanager.yml").write_text(
        _yaml(alertmanager_config(m, ports, out / "alertmanager-token"))
    )
    agent = out / "agent.yaml"
    agent.write_text(_yaml(agent_config(out, repo, ports, zk_hosts, pace)))
    return agent
