"""The scripted incident: four faults, one after the other, each waited out until the node is whole again.

1. OOM burst: the worker's inferences fail with CUDA out of memory, then it dies of it (exit 134); the
   agent, its supervisor, lowers the memory fraction and restarts it (`memory_fraction`).
2. Hang: every request blocks; the canary probe fails, the agent restarts the worker (`worker_restart`).
3. Latency spike: p99 above the SLO; Prometheus fires InferenceP99LatencyHigh on the generated rules,
   Alertmanager routes it to the agent's webhook, the `scale_signal` playbook asks for more capacity.
4. ZooKeeper: one server killed (DEGRADED), a second (NO_QUORUM); the worker hangs again and the
   disruptive restart is held back by the fail-closed fleet budget; the servers come back, quorum returns,
   the held restart goes through.

Every wait has a deadline: a step that does not happen in time is written down ("timeout") and the drill
goes on, so the timeline shows exactly what did and did not happen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from gpuwarden.demo.configs import Pace
from gpuwarden.demo.timeline import Timeline
from gpuwarden.demo.watch import Watchers
from gpuwarden.demo.zookeeper import Ensemble

INCIDENTS = ("oom", "hang", "latency", "zookeeper")
LATENCY_S = 0.5  # added to every inference during the spike: above the 200 ms SLO, under the probe timeout


@dataclass
class Drill:
    timeline: Timeline
    watchers: Watchers
    ensemble: Ensemble
    pace: Pace
    worker: str  # the worker's base URL
    admin_token: str
    scale_signal_file: Path  # where scale_signal writes the decision for the autoscaler

    # -- helpers ------------------------------------------------------------------------------------
    def fault(self, kind: str, **fields: float) -> None:
        requests.post(
            f"{self.worker}/admin/fault", json={"fault": kind, **fields},
            headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=5,
        ).raise_for_status()  # fmt: skip

    def wait(self, what: str, condition: Callable[[], object], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.2)
        self.timeline.add("timeout", f"timeout: {what} did not happen within {timeout:.0f}s")
        return False

    def event(self, step: str) -> Callable[[], bool]:
        incident = self.timeline.incident
        return lambda: self.timeline.has(incident, step)

    def health(self, component: str, state: str) -> Callable[[], bool]:
        return lambda: self.watchers.health.get(component) == state

    def memory_fraction(self) -> str:
        try:
            text = requests.get(f"{self.worker}/metrics", timeout=2).text
        except requests.RequestException:
            return "?"
        for line in text.splitlines():
            if line.startswith("vllm:cache_config_info{"):
                return line.split('gpu_memory_utilization="')[1].split('"')[0]
        return "?"

    def recovered(self, what: str) -> None:
        self.wait("the canary passes again", self.health("engine.probe", "HEALTHY"), 60)
        self.timeline.add("recovered", what, role="recover")

    # -- the incidents ------------------------------------------------------------------------------
    def run(self) -> None:
        for incident, step in zip(
            INCIDENTS, (self.oom, self.hang, self.latency, self.zookeeper), strict=True
        ):
            step()
            if incident != INCIDENTS[-1]:
                time.sleep(self.pace.settle)

    def oom(self) -> None:
        t = self.timeline
        t.section("oom", "Incident 1: OOM burst")
        t.add(
            "inject",
            "fault: every inference fails with CUDA out of memory (the worker logs it)",
            role="inject",
        )
        self.fault("errors")
        time.sleep(2.0)
        t.add("crash", "fault: the worker dies of it (exit 134, as a CUDA OOM kills a vLLM engine)")
        self.fault("crash")
        self.wait("memory_fraction succeeded", self.event("memory_fraction.succeeded"), 90)
        self.recovered(f"worker serves the canary again, memory fraction now {self.memory_fraction()}")

    def hang(self) -> None:
        t = self.timeline
        t.section("hang", "Incident 2: the worker hangs")
        t.add(
            "inject",
            "fault: every request blocks (a deadlocked engine; /metrics still answers)",
            role="inject",
        )
        self.fault("hang")
        self.wait("worker_restart succeeded", self.event("worker_restart.succeeded"), 90)
        self.recovered("worker restarted and serves the canary again")

    def latency(self) -> None:
        t = self.timeline
        t.section("latency", "Incident 3: latency spike")
        t.add("inject", f"fault: every inference takes {LATENCY_S * 1000:.0f} ms longer", role="inject")
        self.fault("latency", latency_s=LATENCY_S)
        budget = _seconds(self.pace.alert_for) + 60
        self.wait(
            "InferenceP99LatencyHigh firing", self.event("prometheus.InferenceP99LatencyHigh.firing"), budget
        )
        self.wait("Alertmanager routes it", self.event("alertmanager.InferenceP99LatencyHigh"), 30)
        signal = self.scale_signal_file
        if self.wait("the scale_signal run", self.event("scale_signal.succeeded"), 60) and signal.exists():
            t.add("scale.up", f"scale-up signal for the autoscaler: {signal.read_text().strip()}",
                  role="act", source="scale")  # fmt: skip
        t.add("clear", "fault cleared: latency back to normal")
        self.fault("none")
        self.wait("the alert resolves", self.event("prometheus.InferenceP99LatencyHigh.resolved"), 90)
        t.add("recovered", "p99 back under the SLO, alert resolved", role="recover")

    def zookeeper(self) -> None:
        t, zk = self.timeline, self.ensemble
        t.section("zookeeper", "Incident 4: ZooKeeper loses servers, then quorum")
        leader = zk.leader()
        followers = [m for m in zk.members if m is not leader]
        first, second = followers[0], leader or followers[1]
        zk.kill(first)
        t.add("inject", f"killed ZooKeeper server {first.address} (SIGKILL)", role="inject")
        self.wait("quorum DEGRADED", self.health("zookeeper.quorum", "DEGRADED"), 30)
        time.sleep(self.pace.hold_degraded)
        zk.kill(second)
        t.add("kill_second", f"killed ZooKeeper server {second.address}, the leader: 1 of 3 left")
        self.wait("NO_QUORUM", self.health("zookeeper.quorum", "UNHEALTHY"), 30)
        t.add("hang", "fault: the worker hangs again while ZooKeeper has no quorum")
        self.fault("hang")
        self.wait("the fleet budget holding worker_restart back", self.event("worker_restart.denied"), 60)
        self.wait("ZooKeeperQuorumLost page", self.event("inbox.page.ZooKeeperQuorumLost.firing"), 30)
        time.sleep(self.pace.hold_no_quorum)
        for m in (first, second):
            zk.run(m)
        t.add("restore", f"restarted ZooKeeper servers {first.address} and {second.address}")
        self.wait("quorum back", self.health("zookeeper.quorum", "HEALTHY"), 90)
        self.wait("the held restart going through", self.event("worker_restart.succeeded"), 90)
        self.recovered("quorum back, the held restart went through, worker serves again")


def _seconds(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(duration[:-1]) * units[duration[-1]]
