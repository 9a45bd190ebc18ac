"""The health store keeps `since`, emits transitions to subscribers and logs each as one line."""

from __future__ import annotations

import io
import json
import logging

from gpuwarden.agent.health_store import HealthStore
from gpuwarden.agent.logs import JSONFormatter
from gpuwarden.health import MEANING, Action, HealthResult, State, Transition

GPU0 = {"gpu": "0", "uuid": "GPU-5d2c"}


def store_with_log(fmt: logging.Formatter | None = None) -> tuple[HealthStore, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(fmt or logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger(f"test.health.{id(out)}")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return HealthStore(log), out


def result(state: State, at: float, reason: str = "r", action: Action = Action.NONE) -> HealthResult:
    return HealthResult("gpu.0.memory", state, reason, action, labels=GPU0, timestamp=at)


def test_a_healthy_first_sight_is_silent_and_an_unhealthy_one_is_a_transition_from_none() -> None:
    store, out = store_with_log()
    seen: list[Transition] = []
    store.subscribe(seen.append)
    store.replace("node", [HealthResult("node.memory", State.HEALTHY, "fine")])
    store.replace("gpu", [result(State.UNHEALTHY, 10.0, "row remap pending", Action.RESET_GPU)])
    assert seen == [
        Transition("gpu.0.memory", GPU0, None, State.UNHEALTHY, "row remap pending", Action.RESET_GPU, 10.0)
    ]
    assert out.getvalue().splitlines() == [
        "WARNING health gpu.0.memory: none -> UNHEALTHY, action reset_gpu gpu=0 uuid=GPU-5d2c: "
        "row remap pending"
    ]


def test_since_holds_while_the_state_holds_and_restarts_on_a_change() -> None:
    store, _ = store_with_log()
    seen: list[Transition] = []
    store.subscribe(seen.append)
    for at, state in (
        (1.0, State.HEALTHY),
        (2.0, State.HEALTHY),
        (3.0, State.DEGRADED),
        (4.0, State.DEGRADED),
    ):
        store.replace("gpu", [result(state, at)])
        (now,) = store.results()
        assert now.timestamp == at
    assert now.since == 3.0
    assert [(t.old, t.new, t.at) for t in seen] == [(State.HEALTHY, State.DEGRADED, 3.0)]
    store.replace("gpu", [result(State.HEALTHY, 5.0)])
    assert store.results()[0].since == 5.0
    assert [(t.old, t.new) for t in seen][-1] == (State.DEGRADED, State.HEALTHY)


def test_a_since_the_collector_knows_wins_over_the_cycle_time() -> None:
    store, _ = store_with_log()
    store.replace("gpu", [HealthResult("gpu.0.xid", State.UNHEALTHY, "XID 79", since=100.0, timestamp=160.0)])
    assert store.results()[0].since == 100.0


def test_a_failed_collector_turns_its_components_unknown_with_their_labels() -> None:
    store, _ = store_with_log()
    seen: list[Transition] = []
    store.subscribe(seen.append)
    store.replace("gpu", [result(State.HEALTHY, 1.0)])
    store.mark_unknown("gpu", "collector gpu: timed out after 10s")
    assert [(t.component, t.labels, t.old, t.new) for t in seen] == [
        ("gpu.0.memory", GPU0, State.HEALTHY, State.UNKNOWN)
    ]
    store.mark_unknown("engine", "collector engine cannot start: no model")
    assert (seen[-1].component, seen[-1].old, seen[-1].new) == ("engine", None, State.UNKNOWN)


def test_a_failing_subscriber_does_not_stop_the_others_and_unsubscribe_stops_delivery() -> None:
    store, out = store_with_log()
    seen: list[State] = []

    def broken(t: Transition) -> None:
        raise RuntimeError("engine queue full")

    store.subscribe(broken)
    stop = store.subscribe(lambda t: seen.append(t.new))
    store.replace("gpu", [result(State.DEGRADED, 1.0)])
    stop()
    store.replace("gpu", [result(State.UNHEALTHY, 2.0)])
    assert seen == [State.DEGRADED]
    assert "health subscriber" in out.getvalue() and "engine queue full" in out.getvalue()


def test_in_json_mode_each_transition_is_one_object_with_its_fields() -> None:
    store, out = store_with_log(JSONFormatter())
    store.replace("gpu", [result(State.UNHEALTHY, 7.0, "XID 79:\nfell off the bus", Action.REBOOT_NODE)])
    (line,) = out.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["event"] == "health_transition" and entry["level"] == "warning"
    assert (entry["component"], entry["old"], entry["new"], entry["action"]) == (
        "gpu.0.memory",
        None,
        "UNHEALTHY",
        "reboot_node",
    )
    assert entry["labels"] == GPU0 and entry["at"] == 7.0
    assert entry["msg"].endswith("XID 79: fell off the bus")


def test_every_action_has_one_sentence_of_meaning() -> None:
    assert set(MEANING) == set(Action)
    assert all(text.endswith(".") and text[0].isupper() for text in MEANING.values())
