"""Each rail changes the outcome: the same request is allowed without it and refused with it.

Rails read time as a number and their state from audit records, so every case is a list of records and a
clock value; nothing sleeps."""

from __future__ import annotations

from typing import Any

import pytest

from gpuwarden.remediations.rails import ALL, Rails
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.settings import RailsSettings, StormSettings

T0 = 1_000_000.0
RAILS = RailsSettings(
    max_attempts=2, window_s=3600, cooldown_s=300, backoff_initial_s=30, backoff_max_s=100,
    backoff_reset_s=1800, grace_s=60, flap_max=3, flap_window_s=600,
)  # fmt: skip


def rec(step: str, ts: float, run: str = "r1", **fields: Any) -> dict[str, Any]:
    return {"ts": ts, "run": run, "step": step, "playbook": "worker_restart", "target": "worker", **fields}


def attempt(run: str, ts: float, result: str, started_target: bool = False) -> list[dict[str, Any]]:
    out = [rec("attempt", ts, run)]
    if started_target:
        out.append(rec("action", ts + 1, run, name="start", status="done"))
    return [*out, rec("outcome", ts + 2, run, result=result)]


def decide(records: list[dict[str, Any]], now: float, flaps: int = 0, startup_grace: float = 0.0) -> str:
    rails = Rails(started_at=T0 - 10_000, startup_grace_s=startup_grace)
    rails.replay(records)
    request = Request("worker_restart", "health", "health:engine.canary", "test", flaps=flaps)
    decision = rails.check(request, "worker", RAILS, now)
    return "ok" if decision.ok else decision.rail


def test_nothing_in_the_log_allows_a_run() -> None:
    assert decide([], T0) == "ok"


def test_the_attempt_budget_refuses_the_attempt_after_max_attempts_within_the_window() -> None:
    two = attempt("a", T0, "failed") + attempt("b", T0 + 500, "failed")
    assert decide(two, T0 + 1000) == "budget"
    assert decide(two, T0 + 3601) == "ok", "the first attempt left the window"
    assert decide(attempt("a", T0, "failed"), T0 + 1000) == "ok"


def test_an_exhausted_playbook_stays_exhausted_until_reset() -> None:
    records = [rec("exhausted", T0, reason="2 attempts within 3600s")]
    assert decide(records, T0 + 10 * 3600) == "exhausted"
    assert decide([*records, rec("reset", T0 + 20, "-")], T0 + 30) == "ok"


def test_cooldown_after_a_success_refuses_until_it_has_passed() -> None:
    records = attempt("a", T0, "succeeded")
    assert decide(records, T0 + 100) == "cooldown"
    assert decide(records, T0 + 2 + 301) == "ok"


def test_backoff_doubles_per_failure_up_to_its_cap_and_resets_after_a_quiet_period() -> None:
    one = attempt("a", T0, "failed")
    assert decide(one, T0 + 2 + 20) == "backoff"  # 30 s after one failure
    assert decide(one, T0 + 2 + 31) == "ok"
    three = one + attempt("b", T0 + 40, "failed") + attempt("c", T0 + 200, "failed")
    rails = RailsSettings(**{**RAILS.model_dump(), "max_attempts": 10})
    r = Rails(T0 - 10_000, 0)
    r.replay(three)
    request = Request("worker_restart", "manual", "user:x", "t")
    assert not r.check(request, "worker", rails, T0 + 202 + 99).ok  # 30·2² = 120, capped at 100
    assert r.check(request, "worker", rails, T0 + 202 + 101).ok
    # Quiet for backoff_reset_s, then one more failure: back to the initial 30 s, not the 100 s cap.
    later = [*three, *attempt("d", T0 + 202 + 1800, "failed")]
    r = Rails(T0 - 10_000, 0)
    r.replay(later)
    assert r.check(request, "worker", rails, T0 + 2004 + 31).ok
    assert not r.check(request, "worker", rails, T0 + 2004 + 29).ok


def test_grace_after_the_engine_restarted_the_target() -> None:
    records = attempt("a", T0, "failed", started_target=True)
    rails = Rails(T0 - 10_000, 0)
    rails.replay(records)
    assert rails.target_started["worker"] == T0 + 1
    assert decide(records, T0 + 1 + 59) == "grace"


def test_startup_grace_of_the_agent() -> None:
    assert decide([], T0, startup_grace=20_000) == "startup"


def test_a_flapping_trigger_is_not_acted_on() -> None:
    assert decide([], T0, flaps=3) == "flapping"
    assert decide([], T0, flaps=2) == "ok"


@pytest.mark.parametrize("scope", [ALL, "worker_restart"])
def test_a_pause_refuses_with_its_reason_and_resume_lifts_it(scope: str) -> None:
    paused = [rec("pause", T0, "-", reason="cluster upgrade by @alice", playbook=scope)]
    rails = Rails(T0 - 10_000, 0)
    rails.replay(paused)
    decision = rails.check(Request("worker_restart", "manual", "user:x", "t"), "worker", RAILS, T0 + 1)
    assert (decision.rail, decision.reason) == ("paused", "paused: cluster upgrade by @alice")
    resumed = [*paused, rec("resume", T0 + 5, "-", playbook=scope)]
    assert decide(resumed, T0 + 10) == "ok"


def test_a_pause_keeps_the_time_it_was_asked_for_until_resumed() -> None:
    rails = Rails(T0 - 10_000, 0)
    rails.replay([rec("pause", T0, "-", reason="a", playbook=ALL), rec("pause", T0 + 60, "-", playbook=ALL)])
    assert rails.paused_at == {ALL: T0 + 60}  # paused again: a fresh decision, a fresh age
    rails.observe(rec("resume", T0 + 90, "-", playbook=ALL))
    assert rails.paused_at == {} and rails.paused == {}


def test_a_pause_of_another_playbook_does_not_stop_this_one() -> None:
    assert decide([rec("pause", T0, "-", reason="x", playbook="memory_fraction")], T0 + 1) == "ok"


def test_storm_mode_starts_at_max_runs_disruptive_attempts_of_all_playbooks_and_holds_until_reset() -> None:
    storm = StormSettings(max_runs=3, window_s=600)
    rails = Rails(started_at=T0 - 10_000, startup_grace_s=0)
    runs = [
        {**rec("attempt", T0 + i, f"r{i}", disruptive=True), "playbook": p, "target": f"gpu{i}"}
        for i, p in enumerate(["worker_restart", "memory_fraction", "gpu_quarantine"])
    ]
    rails.replay(runs[:2])
    assert rails.storming(storm, T0 + 10) is None, "two runs are not a storm"
    rails.replay([rec("attempt", T0 + 3, "quiet", disruptive=False)])  # a log rotation does not count
    assert rails.storming(storm, T0 + 10) is None
    rails.replay(runs[2:])
    why = rails.storming(storm, T0 + 10)
    assert why == "3 disruptive runs within 600s on this node"
    assert rails.storming(storm, T0 + 700) is None, "the runs left the window before the storm latched"
    rails.observe({**rec("storm", T0 + 10, "-", reason=why), "playbook": ALL, "target": "-"})
    request = Request("worker_restart", "manual", "user:a", "test")
    assert rails.check(request, "worker", RAILS, T0 + 10_000).rail == "storm", "latched: time does not end it"
    rails.observe({**rec("reset", T0 + 10_001, "-"), "playbook": ALL, "target": "-"})
    assert rails.check(request, "worker", RAILS, T0 + 10_002).ok
    assert rails.storming(storm, T0 + 10_002) is None
