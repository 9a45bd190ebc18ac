"""The runner isolates collectors: one that raises, hangs or yields garbage never breaks a scrape."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from gpuwarden.agent.health_store import HealthStore
from gpuwarden.agent.http import Router
from gpuwarden.agent.registry import CollectionFailed, CollectorSettings, Item
from gpuwarden.agent.runner import Runner
from gpuwarden.agent.server import HTTPServer, agent_routes
from gpuwarden.config import TLSSettings
from gpuwarden.health import HealthResult, State


class Counting:
    """A well-behaved collector: one gauge that counts its own runs."""

    def __init__(self) -> None:
        self.runs = 0

    def collect(self) -> Iterator[Item]:
        self.runs += 1
        yield GaugeMetricFamily("test_good_runs", "runs so far", value=self.runs)
        yield HealthResult("good", State.HEALTHY, "fine")

    def close(self) -> None:
        pass


class Raising:
    def __init__(self) -> None:
        self.fail = False

    def collect(self) -> Iterator[Item]:
        yield HealthResult("flaky", State.HEALTHY, "fine")
        yield GaugeMetricFamily("test_flaky_value", "a value", value=1)
        if self.fail:
            raise OSError(5, "Input/output error")

    def close(self) -> None:
        pass


class Hanging:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def collect(self) -> Iterator[Item]:
        self.calls += 1
        self.release.wait(30)  # a driver call stuck in D state
        yield GaugeMetricFamily("test_hung_value", "never seen", value=1)

    def close(self) -> None:
        self.release.set()


class Garbage:
    def collect(self) -> Iterator[object]:
        yield "not a metric"

    def close(self) -> None:
        pass


class BrokenSource:
    """A collector whose target answers nonsense: it says so and keeps its own verdict and `up` series."""

    def collect(self) -> Iterator[Item]:
        yield GaugeMetricFamily("test_source_up", "whether the source answered", value=0)
        yield HealthResult("source.target", State.UNHEALTHY, "HTML instead of metrics (3 in a row)")
        yield CollectionFailed("http://127.0.0.1:8000/metrics answered text/html")

    def close(self) -> None:
        pass


SETTINGS = CollectorSettings(interval=1, timeout=0.3)


@pytest.fixture
def runner() -> Iterator[Runner]:
    r = Runner(HealthStore(), logging.getLogger("test"))
    yield r
    r.close()


def samples(runner: Runner) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(runner.exposition.plain.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(runner: Runner, name: str, **labels: str) -> float | None:
    return samples(runner).get((name, tuple(sorted(labels.items()))))


def test_a_raising_collector_reports_failure_and_its_health_turns_unknown(runner: Runner) -> None:
    flaky, good = Raising(), Counting()
    runner.set_collectors({"flaky": (flaky, SETTINGS), "good": (good, SETTINGS)})
    assert runner.run("flaky") and runner.run("good")
    assert value(runner, "test_flaky_value") == 1
    flaky.fail = True
    assert not runner.run("flaky")
    assert value(runner, "gpuwarden_collector_success", collector="flaky") == 0
    assert value(runner, "gpuwarden_collector_errors_total", collector="flaky") == 1
    assert value(runner, "test_flaky_value") is None, (
        "a failed collection's partial series must not be served"
    )
    health = {r.component: r for r in runner.health.results()}
    assert health["flaky"].state == State.UNKNOWN
    assert "OSError" in health["flaky"].reason
    assert health["good"].state == State.HEALTHY
    assert runner.run("good")
    assert value(runner, "test_good_runs") == 2


def test_a_hanging_collector_times_out_and_is_not_started_twice(runner: Runner) -> None:
    hung, good = Hanging(), Counting()
    runner.set_collectors({"hung": (hung, SETTINGS), "good": (good, SETTINGS)})
    start = time.monotonic()
    assert not runner.run("hung")
    assert time.monotonic() - start < 1.0
    assert value(runner, "gpuwarden_collector_success", collector="hung") == 0
    assert value(runner, "gpuwarden_collector_timeouts_total", collector="hung") == 1
    assert not runner.run("hung")  # still stuck: skipped, not stacked
    assert hung.calls == 1
    assert value(runner, "gpuwarden_collector_timeouts_total", collector="hung") == 2
    hung.release.set()
    time.sleep(0.05)
    assert runner.run("hung")  # the driver came back: collection resumes
    assert value(runner, "gpuwarden_collector_success", collector="hung") == 1


def test_a_scrape_answers_within_a_second_while_a_collector_hangs(runner: Runner) -> None:
    hung, good = Hanging(), Counting()
    runner.set_collectors(
        {"hung": (hung, CollectorSettings(interval=1, timeout=5)), "good": (good, SETTINGS)}
    )
    routes = Router(agent_routes(runner, runner.health, lambda: True))
    server = HTTPServer("127.0.0.1:0", TLSSettings(), routes)
    server.start()
    try:
        threading.Thread(target=runner.run, args=("hung",), daemon=True).start()
        time.sleep(0.1)
        assert runner.run("good")
        before = time.monotonic()
        response = requests.get(f"{server.address}/metrics", timeout=1)
        assert response.status_code == 200 and time.monotonic() - before < 1.0
        assert "test_good_runs 1.0" in response.text
        last = value(runner, "gpuwarden_collector_last_success_timestamp_seconds", collector="good")
        assert last is not None and time.time() - last < 2
    finally:
        hung.release.set()
        server.stop()


def test_a_source_answering_nonsense_fails_the_collection_but_keeps_its_verdict_and_up_series(
    runner: Runner,
) -> None:
    runner.set_collectors({"source": (BrokenSource(), SETTINGS)})
    assert not runner.run("source")
    assert value(runner, "gpuwarden_collector_success", collector="source") == 0
    assert value(runner, "gpuwarden_collector_errors_total", collector="source") == 1
    assert value(runner, "test_source_up") == 0
    (health,) = runner.health.results()
    assert (health.component, health.state) == ("source.target", State.UNHEALTHY)


def test_a_collector_yielding_garbage_is_a_failure_not_a_broken_exposition(runner: Runner) -> None:
    runner.set_collectors({"garbage": (Garbage(), SETTINGS)})  # type: ignore[dict-item]
    assert not runner.run("garbage")
    assert value(runner, "gpuwarden_collector_errors_total", collector="garbage") == 1


def test_health_states_are_exported_one_hot(runner: Runner) -> None:
    runner.set_collectors({"good": (Counting(), SETTINGS)})
    runner.run("good")
    states = {s: value(runner, "gpuwarden_health_state", component="good", state=s) for s in State}
    assert states == {State.HEALTHY: 1, State.DEGRADED: 0, State.UNHEALTHY: 0, State.UNKNOWN: 0}


def test_removing_a_collector_drops_its_series_and_health(runner: Runner) -> None:
    runner.set_collectors({"good": (Counting(), SETTINGS)})
    runner.run("good")
    runner.set_collectors({})
    assert value(runner, "test_good_runs") is None
    assert runner.health.results() == []


class Kept:
    """Yields the same family object every run, so a test can change it after a collection."""

    def __init__(self) -> None:
        self.family = GaugeMetricFamily("test_kept_value", "a value", value=1)

    def collect(self) -> Iterator[Item]:
        yield self.family

    def close(self) -> None:
        pass


def test_a_collection_renders_its_own_families_once_and_joins_the_others_cached_bytes(
    runner: Runner,
) -> None:
    kept, counting = Kept(), Counting()
    runner.set_collectors({"kept": (kept, SETTINGS), "good": (counting, SETTINGS)})
    assert runner.run("kept") and runner.run("good")
    kept.family.samples[0] = kept.family.samples[0]._replace(value=99.0)  # after its collection
    assert runner.run("good")
    assert value(runner, "test_kept_value") == 1.0  # the bytes of its own collection, not re-rendered
    assert value(runner, "test_good_runs") == 2.0
    assert runner.exposition.plain.count(b"# TYPE test_kept_value gauge") == 1
    assert runner.run("kept")
    assert value(runner, "test_kept_value") == 99.0
