"""A real Prometheus finds the agent in ZooKeeper (serverset discovery on a real ensemble), scrapes it while
it watches the reference worker, loads every generated rule file, and answers every dashboard query."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from gpuwarden.alert_rules.mixin import Mixin
from gpuwarden.alert_rules.routing import Deployment, prometheus
from gpuwarden.dashboards import build
from tests.integration.agent_process import AgentProcess, free_port, only_collectors
from tests.integration.worker_process import WorkerProcess
from tests.integration.zk_ensemble import Ensemble

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"
H200 = ROOT / "tests" / "fixtures" / "nvml" / "h200-busy.json"
NODE = "gpu-node-dash"
CLUSTER = "dashboards-e2e"

# Panels this machine cannot feed, and why: exactly these have no data; every other panel must.
UNFED = {
    "Scale decisions": "scale_signal is not enabled here: no fleet decision (test_remediation_scale.py)",
    "XIDs": "the replayed H200 recording has no XID",
    "XIDs by action": "the replayed H200 recording has no XID",
    "InfiniBand throughput": "this machine has no InfiniBand port",
    "InfiniBand ports up": "this machine has no InfiniBand port",
    "Kernel launch latency": "no CUDA driver here (kernel_latency off)",
    "Time to first token": "the reference worker serves no streaming requests in this test",
    "KV cache": "the reference worker exports no KV-cache usage",
    "Memory fragmentation": "the reference worker exports no allocator statistics",
}


def api(prom: str, path: str, **params: str) -> Any:
    body = requests.get(f"{prom}/api/v1/{path}", params=params, timeout=10).json()
    assert body["status"] == "success", body
    return body["data"]


def wait_for(prom: str, expr: str, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = api(prom, "query", query=expr)["result"]
            if result:
                return list(result)
        except (requests.RequestException, AssertionError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never returned {expr}")


@pytest.fixture(scope="module")
def stack(zk_ensemble: Ensemble, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is missing: `make deps-debian` installs Debian's prometheus package")
    tmp = tmp_path_factory.mktemp("dashboards-e2e")
    (tmp / "worker").mkdir()
    worker = WorkerProcess(tmp / "worker").start()
    port = worker.url.rsplit(":", 1)[1]
    collectors = only_collectors(
        {
            "node": {"interval": 1},
            "doctor": {"interval": 60},
            "gpu": {"interval": 1, "backend": "replay", "replay_file": str(H200)},
            "network": {"interval": 1, "peers": [{"name": "worker", "host": "127.0.0.1", "port": int(port)}]},
            "inference": {"interval": 0.5, "url": worker.url + "/metrics", "window": 3, "min_requests": 1},
            "engine": {
                "interval": 1,
                "backend": "http",
                "model_dir": str(worker.model_dir),
                "kernel_latency": "off",
                "http": {"url": worker.url},
            },
            "zookeeper": {"interval": 1, "ensemble": "e2e", "servers": zk_ensemble.hosts.split(",")},
        }
    )
    listen = f"127.0.0.1:{free_port()}"
    quarantine = tmp / "quarantine.json"
    quarantine.write_text(json.dumps({"GPU-quarantined-in-test": {"gpu": "3", "reason": "XID 79"}}))
    config = {
        "agent": {"listen": listen},
        "collectors": collectors,
        "fleet": {"enabled": True, "hosts": zk_ensemble.hosts.split(","), "cluster": CLUSTER, "node": NODE},
        # The engine with playbooks and no trigger: it exports its series and never acts. One GPU sits in
        # the quarantine file, as a node keeps it after gpu_quarantine ran (the Quarantined GPUs panel).
        "remediation": {
            "enabled": True,
            "dry_run": True,
            "audit_log": str(tmp / "audit.jsonl"),
            "targets": {"worker": {"kind": "http", "url": worker.url + "/no-hook"}},
            "playbooks": {
                "worker_restart": {"enabled": True},
                "gpu_quarantine": {"enabled": True, "quarantine_file": str(quarantine)},
            },
        },
    }
    agent = AgentProcess(tmp, config, watchdog_usec=None)
    prom_port = free_port()
    deployment = replace(
        Deployment(),
        zookeeper=tuple(zk_ensemble.hosts.split(",")),
        serverset_paths=(f"/gpuwarden/{CLUSTER}/serverset",),
        scrape_interval="1s",
    )
    prom_config = prometheus(sorted(str(p) for p in RULES.glob("*.yml")), deployment, Mixin().job)
    del prom_config["alerting"]  # this test has no Alertmanager
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
    proc = None
    try:
        agent.wait_message("READY=1", timeout=60)
        proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "prometheus.log").open("wb"),
        )
        yield {"prom": f"http://127.0.0.1:{prom_port}", "worker": worker, "listen": listen}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        agent.stop()
        worker.stop()


def test_prometheus_discovers_the_agent_in_zookeeper_and_loads_every_rule_file(stack: dict[str, Any]) -> None:
    prom = stack["prom"]
    (up,) = wait_for(prom, 'up{job="gpuwarden"} == 1')
    assert up["metric"]["instance"] == NODE  # relabelled from the serverset znode's name
    (target,) = api(prom, "targets", state="active")["activeTargets"]
    assert target["discoveredLabels"]["__meta_serverset_path"] == f"/gpuwarden/{CLUSTER}/serverset/{NODE}"
    assert target["discoveredLabels"]["__address__"] == stack["listen"]  # the serviceEndpoint
    groups = api(prom, "rules")["groups"]
    assert {g["file"] for g in groups} == {str(p) for p in RULES.glob("*.yml")}
    deadline = time.monotonic() + 30
    while any(r.get("health") != "ok" for g in groups for r in g["rules"]) and time.monotonic() < deadline:
        time.sleep(1)
        groups = api(prom, "rules")["groups"]
    bad = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r.get("health") != "ok"]
    assert bad == []


def instant(expr: str) -> str:
    """A dashboard query as Grafana sends it with every variable on All."""
    text = expr.replace("$__rate_interval", "30s")
    return re.sub(r"\$\{?(node|gpu|ensemble|playbook)\}?", ".*", text)


def test_every_dashboard_query_evaluates_and_every_panel_the_agent_feeds_has_data(
    stack: dict[str, Any],
) -> None:
    prom, worker = stack["prom"], stack["worker"]
    wait_for(prom, 'up{job="gpuwarden"} == 1')
    body = {"inputs": json.loads((worker.model_dir / "canary.json").read_text())["inputs"]}
    for _ in range(40):  # traffic for the inference window
        requests.post(worker.url + "/v2/models/canary/infer", json=body, timeout=5)
        time.sleep(0.05)
    wait_for(prom, "gpuwarden_inference_requests_per_second > 0")
    wait_for(prom, "job:gpuwarden_gpu_utilization_ratio:avg")  # the recording rules have run
    time.sleep(3)  # enough samples for rate() over 30s
    unfed: dict[str, list[str]] = {}
    for name, dashboard in build.build().items():
        for panel in json.loads(json.dumps(dashboard.to_json_data(), default=lambda o: o.to_json_data()))[
            "panels"
        ]:
            if panel["type"] == "row":
                continue
            results = [api(prom, "query", query=instant(t["expr"]))["result"] for t in panel["targets"]]
            if not any(results):
                unfed.setdefault(panel["title"], []).append(name)
    print("panels without data here:", json.dumps({t: UNFED.get(t, "?") for t in unfed}, indent=1))
    assert set(unfed) == set(UNFED), {t: unfed[t] for t in set(unfed) ^ set(UNFED)}
