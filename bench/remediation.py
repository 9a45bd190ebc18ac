"""Time from an injected fault to verified recovery, remediation engine vs Kubernetes liveness defaults.

The reference worker runs supervised by the remediation engine (a `process` target). A probe asks the
worker's canary every `--interval` seconds (1 s) with a timeout of the same length, the way the agent's
engine probe does, and hands its verdict to the engine as health transitions:
- hung worker (`hang` fault: requests block) → `engine.canary` UNHEALTHY held `--hold` s → worker_restart;
- OOM burst (`errors` fault: HTTP 500 and PyTorch's `CUDA out of memory` in the log) → `inference.errors`
  UNHEALTHY held `--hold` s → memory_fraction (lower, persist, restart);
- crashed worker (`crash` fault: the process exits) → the supervisor's `exit` trigger → worker_restart.
Recovery is measured from the fault's injection to the run's `outcome: succeeded` record in the audit log,
which the engine writes only after the worker answered its readiness check again (verified).

Peer: a Kubernetes liveness probe with its defaults (periodSeconds 10 × failureThreshold 3) declares the
container dead 30 s after it stopped answering, before the restart even begins; 30 s is printed as the
peer's figure (detection only, so the ratio flatters Kubernetes). Kubernetes restarts a crashed container
at once, but with a back-off that grows 10 s, 20 s, 40 s ... up to 5 min on repeated crashes.

Run: `python bench/remediation.py` (about 3 minutes on 2 cores); the last line is
`recovery p50 hung=<seconds> oom=<seconds> crash=<seconds>`. Results: bench/results/remediation.txt.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpuwarden.health import State  # noqa: E402
from gpuwarden.remediations.audit import read  # noqa: E402
from gpuwarden.remediations.engine import Engine  # noqa: E402
from tests.integration.remediation_support import Transition, Worker, settings  # noqa: E402

K8S_LIVENESS_S = 10 * 3  # periodSeconds default 10 x failureThreshold default 3 (Kubernetes probe docs)
SCENARIOS = {"hung": "hang", "oom": "errors", "crash": "crash"}


class Probe:
    """The canary every `interval` seconds; its verdict goes to the engine as health transitions."""

    def __init__(self, worker: Worker, interval: float) -> None:
        self.worker, self.interval = worker, interval
        self.states: dict[str, State] = {}
        self.canary: dict[str, object] = {}
        self._stop = threading.Event()

    def start(self, engine: Engine) -> None:
        self.engine = engine
        wait_serving(self.worker)  # the worker writes its canary input when it first starts
        self.canary = {"inputs": json.loads((self.worker.model_dir / "canary.json").read_text())["inputs"]}
        threading.Thread(target=self._run, daemon=True).start()

    def state(self, component: str) -> str | None:
        return str(self.states[component]) if component in self.states else None

    def _set(self, component: str, state: State, reason: str) -> None:
        if self.states.get(component) != state:
            self.states[component] = state
            self.engine.on_transition(Transition(component, state, reason))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                code = requests.post(
                    f"{self.worker.url}/v2/models/canary/infer", json=self.canary, timeout=self.interval
                ).status_code
            except requests.RequestException as err:
                code, reason = 0, type(err).__name__
            else:
                reason = f"HTTP {code}"
            self._set("engine.canary", State.HEALTHY if code in (200, 500) else State.UNHEALTHY, reason)
            self._set("inference.errors", State.UNHEALTHY if code == 500 else State.HEALTHY, reason)

    def stop(self) -> None:
        self._stop.set()


def recovered_at(engine: Engine, after: float, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in read(engine.audit.path, since=after):
            if r["step"] == "outcome" and r["result"] == "succeeded":
                return float(r["ts"])
            if r["step"] == "outcome" and r["result"] not in ("skipped",):
                raise RuntimeError(f"run ended {r['result']}: {r['reason']}")
        time.sleep(0.02)
    raise TimeoutError(f"no recovery within {timeout:g} s: {list(read(engine.audit.path, since=after))}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=10, help="runs per scenario")
    p.add_argument("--interval", type=float, default=1.0, help="probe interval (and timeout), seconds")
    p.add_argument("--hold", type=float, default=1.0, help="a bad state must hold this long (for_s)")
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)

    tmp = Path(tempfile.mkdtemp(prefix="gpuwarden-bench-remediation-"))
    worker = Worker(tmp)
    worker.env_file.write_text("GPUWARDEN_MEMORY_FRACTION=0.9\n")
    # Rails that would stop a benchmark of repeated faults are opened wide: the attempt budget, back-off,
    # cool-down, the flap filter (30 faults in 3 minutes are a flapping worker) and storm mode.
    rails = {
        "grace_s": 3, "cooldown_s": 0, "backoff_initial_s": 0, "max_attempts": 1000, "flap_max": 1000,
        "verify_timeout_s": 30,
    }  # fmt: skip
    health = {"kind": "health", "for_s": args.hold}
    cfg = settings(
        tmp, worker,
        worker_restart={"enabled": True, "rails": rails,
                        "triggers": [{**health, "component": "engine.canary"}, {"kind": "exit"}]},
        memory_fraction={"enabled": True, "rails": rails, "floor": 0.1,
                         "triggers": [{**health, "component": "inference.errors"}]},
    )  # fmt: skip
    cfg = cfg.model_copy(update={"storm": cfg.storm.model_copy(update={"max_runs": 10_000})})
    probe = Probe(worker, args.interval)
    engine = Engine(cfg, health=probe.state).start()  # the re-check before acting reads the probe
    times: dict[str, list[float]] = {name: [] for name in SCENARIOS}
    try:
        probe.start(engine)
        for n in range(args.runs):
            for name, fault in SCENARIOS.items():
                settle(probe, args.interval, cfg.playbook("worker_restart").rails.grace_s)
                worker.env_file.write_text("GPUWARDEN_MEMORY_FRACTION=0.9\n")
                injected = time.time()
                worker.fault(fault)
                times[name].append(recovered_at(engine, injected) - injected)
                steps = " ".join(
                    f"{r['step']}{'.' + r['name'] if r['step'] == 'action' and r['status'] == 'done' else ''}"
                    f"@{r['ts'] - injected:.2f}"
                    for r in read(engine.audit.path, since=injected)
                    if r["step"] in ("trigger", "attempt", "outcome") or r.get("status") == "done"
                )
                print(f"run {n + 1:>2} {name:<5} recovered in {times[name][-1]:.2f}s  ({steps})", flush=True)
    finally:
        probe.stop()
        engine.stop(stop_targets=True)
    p50 = {name: statistics.median(t) for name, t in times.items()}
    print(f"\nprobe interval {args.interval:g}s, bad state held {args.hold:g}s, {args.runs} runs each")
    print(f"{'scenario':<8} {'kubernetes liveness (detection only)':>38} {'gpuwarden p50':>14} {'ratio':>7}")
    for name in SCENARIOS:
        print(f"{name:<8} {K8S_LIVENESS_S:>37.1f}s {p50[name]:>13.2f}s {K8S_LIVENESS_S / p50[name]:>6.1f}x")
    print(f"recovery p50 hung={p50['hung']:.2f} oom={p50['oom']:.2f} crash={p50['crash']:.2f}")


def wait_serving(worker: Worker, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while worker.infer() != 200:
        if time.monotonic() > deadline:
            raise TimeoutError("the worker did not start")
        time.sleep(0.1)


def settle(probe: Probe, interval: float, grace_s: float) -> None:
    """Before the next fault: the worker serves, the probe saw it, and the target's grace has passed."""
    wait_serving(probe.worker)
    time.sleep(max(grace_s, 2 * interval) + 0.2)


if __name__ == "__main__":
    main()
