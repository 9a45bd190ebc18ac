"""What the demo watches while the drill runs, each on its own thread, each writing to the timeline:

- the agent's `/health` (state changes of the components the drill exercises);
- the remediation audit log (every run: trigger, rails, fleet lease, steps, outcome);
- Prometheus' `/api/v1/alerts` (pending, firing, resolved) and Alertmanager's `/api/v2/alerts`;
- the demo's on-call inbox (what Alertmanager would page or ticket);
- the agent's `/metrics`, sampled every second for the picture.

A watcher never raises: a source that does not answer is tried again on the next tick.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from gpuwarden.demo.timeline import Timeline
from gpuwarden.remediations.audit import read

WATCHED = ("engine.probe", "inference.latency", "inference.errors", "inference.target", "zookeeper.quorum")


class Watchers:
    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.health: dict[str, str] = {}  # component -> state, as last seen on the agent

    def every(self, seconds: float, fn: Callable[[], None], name: str) -> None:
        def loop() -> None:
            while not self.stop.is_set():
                with contextlib.suppress(requests.RequestException, OSError, ValueError, KeyError):
                    fn()
                self.stop.wait(seconds)

        thread = threading.Thread(target=loop, name=f"watch-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(3)

    # -- the agent's health --------------------------------------------------------------------------
    def poll_health(self, agent: str) -> None:
        body = requests.get(f"{agent}/health", timeout=2).json()
        for c in body["components"]:
            name, state = c["component"], c["state"]
            if name not in WATCHED or self.health.get(name) == state:
                continue
            old = self.health.get(name)
            self.health[name] = state
            if old is None and state == "HEALTHY":
                continue  # the first look at a healthy component is no news
            role = "info" if state == "HEALTHY" else "detect"
            self.timeline.add(
                f"health.{name}.{state}", f"{name} {old or 'new'} -> {state}: {c['reason']}",
                role=role, source="agent", component=name, state=state, old=old,
            )  # fmt: skip


class AuditWatch:
    """Turns the audit log's records into timeline lines. A run that never acted (a rail or the fleet
    budget held it back) is one line at its outcome; a run that acts is shown step by step."""

    def __init__(self, timeline: Timeline, path: Path) -> None:
        self.timeline = timeline
        self.path = path
        self.seen = 0
        self.pending: dict[str, list[dict[str, Any]]] = {}  # run -> records before its attempt
        self.acting: set[str] = set()

    def poll(self) -> None:
        if not self.path.exists():
            return
        records = list(read(self.path))
        for r in records[self.seen :]:
            self.record(r)
        self.seen = len(records)

    def record(self, r: dict[str, Any]) -> None:
        run, step, pb = r["run"], r["step"], r["playbook"]
        if step in ("pause", "resume", "reset", "exhausted"):
            self.timeline.add(f"{pb}.{step}", f"{pb}: {step} {r.get('reason', '')}", source="remediation")
            return
        if run not in self.acting and step not in ("attempt", "outcome"):
            self.pending.setdefault(run, []).append(r)
            return
        if step == "attempt":
            self.acting.add(run)
            for before in self.pending.pop(run, []):
                self.show(before)
        if run in self.acting:
            self.show(r)
            return
        # The outcome of a run that did not act: one line with why.
        earlier = self.pending.pop(run, [])
        trigger: dict[str, Any] = next((e for e in earlier if e["step"] == "trigger"), {})
        held: dict[str, Any] = next(
            (e for e in earlier if e["step"] in ("decision", "lease") and not _allowed(e)), {}
        )
        if held.get("step") == "lease":
            rail, why = "fleet budget", str(held.get("reason", ""))
        else:
            rail, why = str(held.get("rail") or r["result"]), str(r.get("reason", ""))
        self.timeline.add(
            f"{pb}.{r['result']}",
            f"{pb} asked by {trigger.get('actor', '?')}; held back by the {rail} rail: {why}",
            role="held" if r["result"] in ("denied", "skipped") else "info", source="remediation",
            playbook=pb, result=r["result"], rail=rail, run=run, trigger=trigger.get("reason"),
        )  # fmt: skip

    def show(self, r: dict[str, Any]) -> None:
        step, pb, add = r["step"], r["playbook"], self.timeline.add
        if step == "trigger":
            add(f"{pb}.trigger", f"{pb} asked by {r.get('actor')}: {r.get('reason')}", role="detect",
                source="remediation", playbook=pb, run=r["run"])  # fmt: skip
        elif step == "plan":
            steps = r.get("steps", [])  # each step's detail is in the JSON; the line shows the sequence
            names = " -> ".join(s["name"] + (" (disruptive)" if s["disruptive"] else "") for s in steps)
            add(f"{pb}.plan", f"{pb} plan: {names}", source="remediation", playbook=pb, steps=steps)
        elif step == "lease":
            granted = "granted" if r.get("granted") else "not granted"
            add(f"{pb}.lease", f"{pb} fleet budget lease {granted}: {r.get('reason') or 'from ZooKeeper'}",
                source="remediation", playbook=pb)  # fmt: skip
        elif step == "attempt":
            add(f"{pb}.attempt", f"{pb} acting", role="act", source="remediation", playbook=pb)
        elif step == "action" and r.get("status") in ("done", "failed"):
            text = f"{pb} step {r.get('name')}: {r.get('status')} {r.get('error', '')}".rstrip()
            add(f"{pb}.{r.get('name')}", text, source="remediation", playbook=pb)
        elif step == "outcome":
            text = f"{pb} {r['result']} in {r.get('duration_s', 0):.1f}s: {r.get('reason')}"
            add(f"{pb}.{r['result']}", text,
                role="info", source="remediation", playbook=pb, result=r["result"],
                duration_s=r.get("duration_s"))  # fmt: skip


def _allowed(r: dict[str, Any]) -> bool:
    return bool(r.get("allowed", r.get("granted", True)))


class AlertWatch:
    """Prometheus' alert states and Alertmanager's view of them."""

    def __init__(self, timeline: Timeline, prometheus: str, alertmanager: str) -> None:
        self.timeline = timeline
        self.prometheus = prometheus
        self.alertmanager = alertmanager
        self.states: dict[str, str] = {}  # alertname -> pending/firing
        self.routed: set[str] = set()  # Alertmanager fingerprints already shown

    def poll_prometheus(self) -> None:
        alerts = requests.get(f"{self.prometheus}/api/v1/alerts", timeout=2).json()["data"]["alerts"]
        now: dict[str, tuple[str, str]] = {}
        for a in alerts:
            name = a["labels"]["alertname"]
            if now.get(name, ("",))[0] != "firing":
                now[name] = (a["state"], str(a.get("value", "")))
        for name, (state, value) in now.items():
            if self.states.get(name) != state:
                self.states[name] = state
                self.timeline.add(
                    f"prometheus.{name}.{state}", f"Prometheus: {name} {state} (value {_short(value)})",
                    role="detect", source="prometheus", alertname=name, state=state,
                )  # fmt: skip
        for name in [n for n in self.states if n not in now]:
            del self.states[name]
            self.timeline.add(
                f"prometheus.{name}.resolved", f"Prometheus: {name} resolved",
                role="info", source="prometheus", alertname=name, state="resolved",
            )  # fmt: skip

    def poll_alertmanager(self) -> None:
        for a in requests.get(f"{self.alertmanager}/api/v2/alerts", timeout=2).json():
            if a["fingerprint"] in self.routed or a["status"]["state"] != "active":
                continue
            self.routed.add(a["fingerprint"])
            name = a["labels"]["alertname"]
            receivers = [r["name"] for r in a["receivers"]]
            self.timeline.add(
                f"alertmanager.{name}", f"Alertmanager: {name} routed to {', '.join(receivers)}",
                source="alertmanager", alertname=name, receivers=receivers, labels=a["labels"],
            )  # fmt: skip


def _short(value: str) -> str:
    try:
        return f"{float(value):.3g}"
    except ValueError:
        return value


def _summary(alert: dict[str, Any]) -> str:
    return str(alert.get("annotations", {}).get("summary", ""))


def _replay(alert: dict[str, Any]) -> str:
    return " [GPU: replay]" if alert.get("labels", {}).get("gpu_source") == "replay" else ""


def start_inbox(timeline: Timeline, port: int) -> ThreadingHTTPServer:
    """The on-call inbox: Alertmanager's page and ticket receivers post here instead of PagerDuty/Slack."""

    class Inbox(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            self.send_response(200)
            self.end_headers()
            kind = self.path.strip("/")
            for a in body.get("alerts", []):
                name = a.get("labels", {}).get("alertname", "?")
                timeline.add(
                    f"inbox.{kind}.{name}.{a.get('status')}",
                    f"on-call {kind}: {name} {a.get('status')} ({_summary(a)}){_replay(a)}",
                    source="inbox", alertname=name, status=a.get("status"),
                )  # fmt: skip

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Inbox)
    threading.Thread(target=server.serve_forever, name="inbox", daemon=True).start()
    return server


SERIES = {
    # sample key: (series name, labels that must match)
    "p99_latency_s": ("gpuwarden_inference_latency_seconds", {"quantile": "0.99"}),
    "error_ratio": ("gpuwarden_inference_error_ratio", {}),
    "requests_per_s": ("gpuwarden_inference_requests_per_second", {}),
    "probe_success": ("gpuwarden_engine_probe_success", {}),
    "zk_tolerable_failures": ("gpuwarden_zookeeper_tolerable_failures", {}),
    "zk_quorum_ok": ("gpuwarden_zookeeper_quorum_ok", {}),
    "replay_gpu_utilization": ("gpuwarden_gpu_utilization_ratio", {"gpu": "0"}),
}


def sample_metrics(timeline: Timeline, agent: str) -> None:
    text = requests.get(f"{agent}/metrics", timeout=2).text
    values: dict[str, float | None] = dict.fromkeys(SERIES)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            for key, (name, labels) in SERIES.items():
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    values[key] = float(s.value)
    timeline.sample(values)
