"""The agent's interval scheduler: runs on time, never overlapping itself, missed ticks coalesced."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from gpuwarden.agent.schedule import Scheduler


@pytest.fixture
def scheduler():
    s = Scheduler(logging.getLogger("test"))
    s.start()
    yield s
    s.shutdown()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_job_runs_every_interval_first_one_interval_after_add(scheduler):
    runs: list[float] = []
    added = time.monotonic()
    scheduler.add("tick", lambda: runs.append(time.monotonic()), 0.1)
    assert wait_for(lambda: len(runs) >= 5)
    assert runs[0] - added >= 0.09  # not at once: the agent runs each collector itself before scheduling
    # Due times are start + k*interval: a late wake-up does not push every later run back.
    assert runs[4] - added == pytest.approx(0.5, abs=0.25)


def test_a_slow_run_never_overlaps_and_missed_ticks_are_coalesced(scheduler):
    running, most, runs = [0], [0], []
    lock = threading.Lock()

    def slow() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        runs.append(time.monotonic())
        time.sleep(0.25)  # two and a half intervals
        with lock:
            running[0] -= 1

    scheduler.add("slow", slow, 0.1)
    assert wait_for(lambda: len(runs) >= 4)
    assert most[0] == 1
    gaps = [b - a for a, b in zip(runs, runs[1:], strict=False)]
    # Each next run starts at the first tick after the slow one ended (0.3 s), never a burst of catch-ups.
    assert all(gap >= 0.24 for gap in gaps), gaps


def test_remove_stops_the_job_and_add_replaces_one_of_the_same_name(scheduler):
    first, second = [], []
    scheduler.add("job", lambda: first.append(1), 0.05)
    assert wait_for(lambda: len(first) >= 2)
    scheduler.add("job", lambda: second.append(1), 0.05)  # a reload re-adds a collector's job
    assert wait_for(lambda: len(second) >= 2)
    settled = len(first)
    time.sleep(0.2)
    assert len(first) <= settled + 1  # at most the run that was in progress
    scheduler.remove("job")
    time.sleep(0.1)
    count = len(second)
    time.sleep(0.3)
    assert len(second) == count
    assert scheduler.names() == []


def test_a_failing_job_is_logged_and_keeps_its_schedule(scheduler, caplog):
    calls = []

    def boom() -> None:
        calls.append(1)
        raise RuntimeError("collector bug")

    with caplog.at_level(logging.ERROR):
        scheduler.add("boom", boom, 0.05)
        assert wait_for(lambda: len(calls) >= 3)
    assert "job boom failed" in caplog.text


def test_shutdown_schedules_nothing_more():
    s = Scheduler(logging.getLogger("test"))
    s.start()
    runs = []
    s.add("tick", lambda: runs.append(1), 0.05)
    assert wait_for(lambda: len(runs) >= 1)
    s.shutdown()
    assert not s.running
    count = len(runs)
    time.sleep(0.3)
    assert len(runs) <= count + 1
