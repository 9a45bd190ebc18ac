"""The remediation engine acting on the real reference worker, supervised by the engine itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuwarden.health import State
from gpuwarden.remediations.engine import Engine
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.settings import StormSettings, SystemdTargetSettings
from gpuwarden.remediations.targets import ProcessTarget, read_env
from gpuwarden.remediations.triggers import Alert
from tests.integration.remediation_support import (
    Transition,
    Worker,
    fast_rails,
    outcomes,
    settings,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(tmp_path: Path) -> Worker:
    w = Worker(tmp_path)
    w.env_file.write_text("GPUWARDEN_MEMORY_FRACTION=0.9\n")
    return w


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    started: list[Engine] = []
    yield started
    for engine in started:
        engine.stop(stop_targets=True)


def start(engines: list[Engine], engine: Engine, worker: Worker) -> Engine:
    engines.append(engine.start())
    wait_for(lambda: worker.infer() == 200, what="the worker serves")
    return engine


def pid(engine: Engine) -> int:
    target = engine.targets["worker"]
    assert isinstance(target, ProcessTarget) and target.proc is not None
    return target.proc.pid


def test_a_hung_worker_held_unhealthy_is_restarted_and_serves_again(
    tmp_path: Path, worker: Worker, engines: list[Engine]
) -> None:
    trigger = {"kind": "health", "component": "engine.*", "for_s": 0.3}
    cfg = settings(
        tmp_path, worker, worker_restart={"enabled": True, "triggers": [trigger], "rails": fast_rails()}
    )
    engine = start(engines, Engine(cfg, health=lambda c: "UNHEALTHY"), worker)
    before = pid(engine)
    worker.fault("hang")
    assert worker.infer() == 0, "the hang fault did not hang the worker"

    engine.on_transition(Transition("engine.canary", State.UNHEALTHY, "canary timed out"))
    (outcome,) = wait_for(lambda: outcomes(Path(cfg.audit_log)), what="an outcome")

    assert outcome["result"] == "succeeded", outcome
    assert pid(engine) != before
    assert worker.infer() == 200
    steps = [r["step"] for r in engine.audit_records() if r["run"] == outcome["run"]]
    assert steps[:6] == ["trigger", "decision", "plan", "evidence", "lease", "attempt"]
    assert steps[-2:] == ["verify", "outcome"]


def test_a_component_that_recovered_before_acting_is_left_alone(
    tmp_path: Path, worker: Worker, engines: list[Engine]
) -> None:
    trigger = {"kind": "health", "component": "engine.*", "for_s": 0.3}
    cfg = settings(
        tmp_path, worker, worker_restart={"enabled": True, "triggers": [trigger], "rails": fast_rails()}
    )
    engine = start(engines, Engine(cfg, health=lambda c: "HEALTHY"), worker)  # the re-check says: fine now
    before = pid(engine)
    engine.on_transition(Transition("engine.canary", State.UNHEALTHY))
    (outcome,) = wait_for(lambda: outcomes(Path(cfg.audit_log)), what="an outcome")
    assert (outcome["result"], outcome["reason"]) == ("skipped", "engine.canary recovered before acting")
    assert pid(engine) == before


def test_an_oom_burst_alert_lowers_the_memory_fraction_and_the_restarted_worker_serves_the_canary(
    tmp_path: Path, worker: Worker, engines: list[Engine]
) -> None:
    playbook = {
        "enabled": True,
        "triggers": [{"kind": "alert", "alertname": "CudaOOM"}],
        "rails": fast_rails(),
    }
    cfg = settings(tmp_path, worker, memory_fraction=playbook)
    engine = start(engines, Engine(cfg), worker)
    assert worker.memory_fraction() == "0.9"
    worker.fault("errors")
    assert worker.infer() == 500
    assert "CUDA out of memory" in worker.log_file.read_text()

    alert = Alert("CudaOOM", "firing", "b1f0c2d3e4a5b6c7", "2026-12-01T10:01:02Z", {"instance": "node-1"})
    (submitted,) = engine.alert(alert)
    assert submitted.accepted
    duplicate = engine.alert(alert)  # the second member of an HA Alertmanager pair
    assert not duplicate[0].accepted and "duplicate" in duplicate[0].reason
    (outcome,) = wait_for(lambda: outcomes(Path(cfg.audit_log)), what="an outcome")

    assert outcome["result"] == "succeeded", outcome
    assert read_env(str(worker.env_file)) == {"GPUWARDEN_MEMORY_FRACTION": "0.8"}
    assert worker.memory_fraction() == "0.8"
    assert worker.infer() == 200


def test_a_resolved_alert_starts_nothing(tmp_path: Path, worker: Worker, engines: list[Engine]) -> None:
    playbook = {"enabled": True, "triggers": [{"kind": "alert", "alertname": "CudaOOM"}]}
    engine = Engine(settings(tmp_path, worker, memory_fraction=playbook))
    engines.append(engine)
    (answer,) = engine.alert(Alert("CudaOOM", "resolved", "f", "2026-12-01T10:01:02Z"))
    assert not answer.accepted and "only firing alerts" in answer.reason
    (answer,) = engine.alert(Alert("SomethingElse", "firing", "g", "2026-12-01T10:01:02Z"))
    assert not answer.accepted and "not allow-listed" in answer.reason


def test_a_crashed_worker_is_started_again_by_its_supervisor(
    tmp_path: Path, worker: Worker, engines: list[Engine]
) -> None:
    playbook = {"enabled": True, "triggers": [{"kind": "exit"}], "rails": fast_rails()}
    cfg = settings(tmp_path, worker, worker_restart=playbook)
    engine = start(engines, Engine(cfg), worker)
    before = pid(engine)
    worker.fault("crash")
    (outcome,) = wait_for(lambda: outcomes(Path(cfg.audit_log)), what="an outcome")
    assert outcome["result"] == "succeeded", outcome
    assert pid(engine) != before and worker.infer() == 200


def test_a_dry_run_records_the_plan_and_leaves_the_worker_alone(
    tmp_path: Path, worker: Worker, engines: list[Engine]
) -> None:
    playbook = {"enabled": True, "rails": fast_rails()}
    cfg = settings(tmp_path, worker, memory_fraction=playbook)
    engine = start(engines, Engine(cfg), worker)
    before = pid(engine)
    engine.submit(Request("memory_fraction", "manual", "user:oncall", "what would you do?", dry_run=True))
    (outcome,) = wait_for(lambda: outcomes(Path(cfg.audit_log)), what="an outcome")
    assert outcome["result"] == "dry_run"
    (plan,) = [r for r in engine.audit_records() if r["step"] == "plan"]
    assert [s["name"] for s in plan["steps"]] == ["persist", "stop", "start", "ready"]
    assert "GPUWARDEN_MEMORY_FRACTION=0.8" in plan["steps"][0]["detail"]
    assert pid(engine) == before and read_env(str(worker.env_file))["GPUWARDEN_MEMORY_FRACTION"] == "0.9"
    assert not any(r["step"] in ("attempt", "action") for r in engine.audit_records())


def test_the_memory_fraction_reaches_a_worker_run_as_a_systemd_unit_through_its_environment_file(
    tmp_path: Path, worker: Worker, engines: list[Engine]
) -> None:
    """systemd cannot run here: the unit is the real worker behind a recording systemctl double."""
    double = Path(__file__).parents[1] / "fixtures" / "remediation" / "systemctl_double.py"
    calls = tmp_path / "systemctl.jsonl"
    env = {
        "SYSTEMCTL_DOUBLE_LOG": str(calls),
        "SYSTEMCTL_DOUBLE_EXEC": json.dumps(worker.target()["argv"]),
        "SYSTEMCTL_DOUBLE_ENV_FILE": str(worker.env_file),
    }
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(
        f"#!{sys.executable}\nimport os, runpy\nos.environ.update({env!r})\n"
        f"runpy.run_path({str(double)!r}, run_name='__main__')\n"
    )
    systemctl.chmod(0o755)
    unit = {
        "kind": "systemd", "unit": "inference-worker@0.service", "systemctl": str(systemctl),
        "env_file": str(worker.env_file), "ready_url": f"{worker.url}/v2/health/ready",
        "log_file": str(worker.log_file), "start_timeout_s": 30,
    }  # fmt: skip
    cfg = settings(tmp_path, worker, memory_fraction={"enabled": True, "rails": fast_rails()})
    cfg = cfg.model_copy(update={"targets": {"worker": SystemdTargetSettings.model_validate(unit)}})
    subprocess.run([str(systemctl), "start", "inference-worker@0.service"], check=True)
    engine = Engine(cfg)
    try:
        start(engines, engine, worker)
        engine.submit(Request("memory_fraction", "manual", "user:oncall", "OOM seen in the worker log"))
        (outcome,) = wait_for(lambda: outcomes(Path(cfg.audit_log)), what="an outcome")
        assert outcome["result"] == "succeeded", outcome
        assert worker.memory_fraction() == "0.8"
        verbs = [json.loads(line)[0] for line in calls.read_text().splitlines()]
        assert verbs[0] == "start" and "stop" in verbs and verbs.count("start") == 2
    finally:
        subprocess.run([str(systemctl), "stop", "inference-worker@0.service"], check=False)


def test_a_lowered_memory_fraction_steps_back_up_after_a_stable_period(
    tmp_path: Path, worker: Worker, engines: list[Engine]
) -> None:
    playbook = {
        "enabled": True,
        "step_up_after_s": 1.0,
        "triggers": [{"kind": "alert", "alertname": "CudaOOM"}, {"kind": "schedule", "every_s": 0.2}],
        "rails": fast_rails(max_attempts=10),
    }
    cfg = settings(tmp_path, worker, memory_fraction=playbook)
    engine = start(engines, Engine(cfg), worker)
    engine.alert(Alert("CudaOOM", "firing", "c0ffee", "2026-12-01T10:01:02Z"))
    first = wait_for(lambda: outcomes(Path(cfg.audit_log)), what="the step down")[0]
    assert first["result"] == "succeeded" and worker.memory_fraction() == "0.8"

    up = wait_for(lambda: outcomes(Path(cfg.audit_log))[1:], timeout=30, what="the step up")[0]
    assert up["result"] == "succeeded", up
    trigger = next(r for r in engine.audit_records() if r["run"] == up["run"] and r["step"] == "trigger")
    assert trigger["source"] == "schedule" and "stable for" in trigger["reason"]
    assert worker.memory_fraction() == "0.9" and worker.infer() == 200
    time.sleep(1.5)  # several schedule ticks past step_up_after_s
    assert len(outcomes(Path(cfg.audit_log))) == 2, "at its initial fraction the schedule found no work"


def test_storm_mode_stops_every_playbook_after_too_many_disruptive_runs_until_reset(
    tmp_path: Path, engines: list[Engine]
) -> None:
    from tests.integration.remediation_driver import settings as driver_settings

    cfg = driver_settings(tmp_path).model_copy(update={"storm": StormSettings(max_runs=2, window_s=600)})
    engine = Engine(cfg)
    engines.append(engine.start())

    def run(reason: str) -> dict[str, object]:
        request = Request("worker_restart", "manual", "user:oncall", reason)
        # The previous run's outcome is written a moment before its target is free again.
        wait_for(lambda: engine.submit(request).accepted, what=f"{reason} accepted")
        return wait_for(
            lambda: [r for r in outcomes(Path(cfg.audit_log)) if r["run"] == request.run_id], what=reason
        )[0]

    assert run("first")["result"] == "succeeded"
    assert run("second")["result"] == "succeeded"
    before = pid(engine)
    third = run("third")
    assert (third["result"], third["reason"]) == (
        "skipped",
        "storm mode (2 disruptive runs within 600s on this node); `reset '*'` re-arms the engine",
    )
    assert pid(engine) == before
    assert [r["step"] for r in engine.audit_records() if r["playbook"] == "*"] == ["storm"]
    assert "gpuwarden_remediation_storm 1.0" in exposition(engine)
    engine.reset("*", actor="user:oncall")
    assert run("after the reset")["result"] == "succeeded"
    assert "gpuwarden_remediation_storm 0.0" in exposition(engine)


def exposition(engine: Engine) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(engine)
    return generate_latest(registry).decode()
