"""A held bad state that the rails keep refusing is one skipped run and a count, not a run every `for_s`;
what passes the rails is still a run of its own, and the count survives a stop and feeds the counters.

A real engine (dry-run, HTTP hook target nobody answers) fed health transitions; its tick turns the held
state into a request every 0.2 s (`for_s` 0.05)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gpuwarden.health import Action, State, Transition
from gpuwarden.remediations.audit import read, runs
from gpuwarden.remediations.engine import Engine
from gpuwarden.remediations.held import Streaks
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.section import RemediationSettings

COMPONENT = "engine.canary"
KEY = ("worker_restart", COMPONENT)


def settings(tmp: Path) -> RemediationSettings:
    return RemediationSettings.model_validate(
        {
            "enabled": True,
            "dry_run": True,
            "audit_log": str(tmp / "audit.jsonl"),
            "startup_grace_s": 0,
            "targets": {"worker": {"kind": "http", "url": "http://127.0.0.1:9/hook"}},
            "playbooks": {
                "worker_restart": {
                    "enabled": True,
                    "triggers": [{"kind": "health", "component": "engine.*", "for_s": 0.05}],
                    "rails": {"grace_s": 0, "cooldown_s": 0, "backoff_initial_s": 0, "flap_max": 100},
                }
            },
        }
    )


def transition(state: State) -> Transition:
    return Transition(COMPONENT, {}, None, state, "canary timed out", Action.RESTART_WORKER, time.time())


def wait(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(settings(tmp_path), health=lambda c: "UNHEALTHY")
    yield eng
    eng.stop()


def steps(eng: Engine) -> list[str]:
    return [r["step"] for r in eng.audit_records() if r["playbook"] != "*"]


def test_a_held_state_refused_by_the_same_rail_is_one_run_and_one_count_until_it_recovers(
    engine: Engine,
) -> None:
    engine.pause("driver upgrade", "user:alice")
    engine.start().on_transition(transition(State.UNHEALTHY))
    wait(lambda: engine.streaks.counted(KEY) >= 5, "five more refusals of the held state")
    assert steps(engine) == ["trigger", "decision", "outcome"]  # one run, not one per for_s
    engine.on_transition(transition(State.HEALTHY))
    (repeats,) = wait(lambda: [r for r in engine.audit_records() if r["step"] == "repeats"], "the count")
    (run,) = runs(engine.audit_records())
    assert repeats["run"] == run["run"] and repeats["ended"] is True
    assert (repeats["rail"], repeats["reason"]) == ("paused", "paused: driver upgrade")
    assert repeats["count"] >= 5 and repeats["first_ts"] <= repeats["last_ts"] <= repeats["ts"]
    assert run["result"] == "skipped" and run["repeats"] == repeats["count"]
    skipped = engine.metrics.runs[("worker_restart", "skipped")]
    assert skipped == 1 + repeats["count"]  # the counter counts every refused request, as before


def test_a_request_the_rails_let_through_ends_the_count_and_runs_with_every_record(engine: Engine) -> None:
    engine.pause("driver upgrade", "user:alice")
    engine.start().on_transition(transition(State.UNHEALTHY))
    wait(lambda: engine.streaks.counted(KEY) >= 2, "refusals of the held state")
    engine.resume("user:alice", reason="upgrade done")
    wait(lambda: "plan" in steps(engine), "a run that passes the rails")
    first = steps(engine)[: steps(engine).index("plan") + 1]
    assert first == ["trigger", "decision", "outcome", "repeats", "trigger", "decision", "plan"]


def test_a_stop_writes_the_count_so_far_and_a_restart_counts_it_again(engine: Engine, tmp_path: Path) -> None:
    engine.pause("driver upgrade", "user:alice")
    engine.start().on_transition(transition(State.UNHEALTHY))
    wait(lambda: engine.streaks.counted(KEY) >= 2, "refusals of the held state")
    engine.stop()
    records = list(read(tmp_path / "audit.jsonl"))
    (repeats,) = [r for r in records if r["step"] == "repeats"]
    again = Engine(settings(tmp_path))  # the counters start from the audit log
    try:
        assert again.metrics.runs[("worker_restart", "skipped")] == 1 + repeats["count"]
        assert "interrupted" not in [r.get("result") for r in again.audit_records()]
    finally:
        again.stop()


def test_a_long_hold_writes_its_count_at_each_checkpoint(tmp_path: Path) -> None:
    engine = Engine(settings(tmp_path), health=lambda c: "UNHEALTHY")
    engine.streaks = Streaks(checkpoint_s=0.5)  # hourly in the agent; a crash loses at most that
    engine.pause("driver upgrade", "user:alice")
    engine.start().on_transition(transition(State.UNHEALTHY))
    try:
        checkpoints = wait(
            lambda: [r for r in engine.audit_records() if r["step"] == "repeats"][1:], "two checkpoints"
        )
    finally:
        engine.stop()
    assert checkpoints[0]["ended"] is False and checkpoints[0]["count"] >= 1
    assert steps(engine).count("trigger") == 1


def test_a_pair_is_free_as_soon_as_its_outcome_can_be_read(engine: Engine) -> None:
    """Who reads a run's outcome (the API, the audit log) and asks again is never told it still runs.
    The engine's bookkeeping after the audit write is slowed down, so that a gap would be seen."""
    observe = engine.metrics.observe

    def slow_observe(record: dict[str, Any]) -> None:
        if record["step"] == "outcome":
            time.sleep(0.3)
        observe(record)

    engine.metrics.observe = slow_observe  # type: ignore[method-assign]
    engine.start()
    for i in range(3):
        submitted = engine.submit(Request("worker_restart", "manual", "user:alice", f"try {i}", dry_run=True))
        assert submitted.accepted, submitted.reason
        run = submitted.run_id
        wait(
            lambda run=run: any(r["run"] == run and r["step"] == "outcome" for r in engine.audit_records()),
            "outcome",
        )
