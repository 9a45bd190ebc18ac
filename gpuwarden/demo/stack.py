"""The demo's stack, brought up in dependency order and taken down in reverse, whatever happened between:
ZooKeeper x3 → the on-call inbox → Alertmanager → Prometheus → the agent (which starts the worker) →
the watchers and the client load."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

from gpuwarden.demo import configs
from gpuwarden.demo.load import Load
from gpuwarden.demo.services import ServiceError, Services, binary
from gpuwarden.demo.timeline import Timeline
from gpuwarden.demo.watch import AlertWatch, AuditWatch, Watchers, sample_metrics, start_inbox
from gpuwarden.demo.zookeeper import Ensemble, free_ports


@dataclass
class Stack:
    out: Path
    repo: Path
    pace: configs.Pace
    timeline: Timeline
    services: Services = field(init=False)
    watchers: Watchers = field(init=False)
    ensemble: Ensemble | None = None
    load: Load | None = None
    inbox: ThreadingHTTPServer | None = None
    urls: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.services = Services(self.out / "logs", pid_files=[self.out / "worker.pid"])
        self.watchers = Watchers(self.timeline)

    def up(self) -> None:
        t, out = self.timeline, self.out
        self.ensemble = Ensemble(root=out / "zookeeper", keep_files=True)
        self.ensemble.start(timeout=120)
        t.add("zookeeper", f"ZooKeeper ensemble serving: {self.ensemble.hosts} (leader and 2 followers)")
        ports = configs.Ports(*free_ports(5))
        agent_yaml = configs.write_all(out, self.repo, ports, self.ensemble.addresses, self.pace)
        for name in ("agent", "worker", "prometheus", "alertmanager"):
            self.urls[name] = f"http://127.0.0.1:{getattr(ports, name)}"
        self.inbox = start_inbox(t, ports.inbox)
        self.http_service("alertmanager", [
            binary("prometheus-alertmanager", "alertmanager"),
            f"--config.file={out / 'alertmanager' / 'alertmanager.yml'}",
            f"--storage.path={out / 'alertmanager' / 'data'}",
            f"--web.listen-address=127.0.0.1:{ports.alertmanager}", "--cluster.listen-address=",
        ], "/-/ready")  # fmt: skip
        webhook = f"{self.urls['agent']}/v1/alerts"
        t.add("alertmanager", f"Alertmanager on {self.urls['alertmanager']}: the generated routes; the "
              f"agents' webhook is {webhook} with a bearer token file")  # fmt: skip
        self.http_service("prometheus", [
            binary("prometheus"), f"--config.file={out / 'prometheus' / 'prometheus.yml'}",
            f"--storage.tsdb.path={out / 'prometheus' / 'data'}",
            f"--web.listen-address=127.0.0.1:{ports.prometheus}",
        ], "/-/ready")  # fmt: skip
        rules = len(list((out / "prometheus" / "rules").glob("*.yml")))
        t.add("prometheus", f"Prometheus on {self.urls['prometheus']} with the {rules} generated rule files")
        started = time.monotonic()
        argv = [sys.executable, "-m", "gpuwarden", "agent", "--config", str(agent_yaml)]
        self.http_service("agent", argv, "/healthz", timeout=120)
        playbooks = "memory_fraction, worker_restart, scale_signal"
        t.add("agent", f"agent on {self.urls['agent']}: collectors gpu ({configs.REPLAY_LABEL}), engine, "
              f"inference, zookeeper; playbooks {playbooks}")  # fmt: skip
        self.watch()
        self.load = Load(self.urls["worker"], out / "model").start()
        deadline = time.monotonic() + 120
        while self.watchers.health.get("engine.probe") != "HEALTHY":
            if time.monotonic() > deadline:
                raise ServiceError(f"the worker never served the canary; see {out / 'logs'}")
            time.sleep(0.3)
        t.add("worker", f"reference worker on {self.urls['worker']}, started and supervised by the agent; "
              "client load ~12 inferences/s")  # fmt: skip
        alerts = AlertWatch(t, self.urls["prometheus"], self.urls["alertmanager"])
        self.watchers.every(0.5, alerts.poll_prometheus, "prometheus")
        self.watchers.every(0.5, alerts.poll_alertmanager, "alertmanager")
        # The engine acts on nothing during its startup grace: the drill starts after it.
        time.sleep(max(0.0, started + configs.STARTUP_GRACE_S + 2 - time.monotonic()))

    def http_service(self, name: str, argv: list[str], ready: str, timeout: float = 60) -> None:
        service = self.services.start(name, argv)
        self.services.wait_http(service, self.urls[name] + ready, timeout, lambda status: status == 200)

    def watch(self) -> None:
        agent, audit = self.urls["agent"], AuditWatch(self.timeline, self.out / "audit" / "audit.jsonl")
        self.watchers.every(0.5, lambda: self.watchers.poll_health(agent), "health")
        self.watchers.every(0.5, audit.poll, "audit")
        self.watchers.every(1.0, lambda: sample_metrics(self.timeline, agent), "metrics")

    def down(self) -> None:
        """Idempotent; the agent goes before the worker's pid file is checked, ZooKeeper last."""
        self.watchers.close()
        if self.load:
            self.load.close()
        if self.inbox:
            self.inbox.shutdown()
            self.inbox = None
        self.services.stop_all()
        if self.ensemble:
            self.ensemble.close()
