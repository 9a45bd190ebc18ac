"""A hung NVML call (driver in D state) never stalls a collection or a scrape, and never piles up threads."""

from __future__ import annotations

import logging
import threading
import time

from gpuwarden.agent.health_store import HealthStore
from gpuwarden.agent.runner import Runner
from gpuwarden.collectors.gpu.nvml_thread import DriverUnresponsive, NvmlThread
from gpuwarden.health import Action, State
from tests.fixtures.nvml.support import health, replay_collector
from tests.golden import exposition, split


def test_a_hung_call_turns_health_to_driver_unresponsive_within_the_deadline() -> None:
    c, _ = replay_collector("h200-hang", nvml_events=False, call_timeout=0.2)
    try:
        first = split(c.collect())
        assert health(first[1], "gpu.driver").state is State.HEALTHY
        start = time.monotonic()
        ms, results = split(c.collect())  # utilization now hangs
        took = time.monotonic() - start
        threads = threading.active_count()
        again_start = time.monotonic()
        ms2, results2 = split(c.collect())  # still hung: answered at once, no second NVML job queued
        again = time.monotonic() - again_start
        assert threading.active_count() == threads
    finally:
        c.close()
    driver = health(results, "gpu.driver")
    assert driver.state is State.UNHEALTHY and driver.reason.startswith("driver_unresponsive")
    assert driver.suggested_action is Action.REBOOT_NODE
    assert "gpuwarden_gpu_nvml_up 0.0" in exposition(ms)
    assert 'gpu="0"' not in exposition(ms)  # no half-collected GPU samples
    assert took < 0.2 + 1.0 and again < 0.2
    assert health(results2, "gpu.driver").reason.startswith("driver_unresponsive")


def test_the_runner_keeps_serving_the_exposition_while_nvml_hangs() -> None:
    c, _ = replay_collector("h200-hang", nvml_events=False, call_timeout=0.2, timeout=2.0)
    store = HealthStore()
    runner = Runner(store, logging.getLogger("test.runner"))
    runner.set_collectors({"gpu": (c, c.settings)})
    try:
        assert runner.run("gpu")
        assert b"gpuwarden_gpu_utilization_ratio{" in runner.exposition.plain
        assert runner.run("gpu")  # the collector itself answers: the runner sees a successful run
        body = runner.exposition.plain
    finally:
        runner.close()
    assert b"gpuwarden_gpu_nvml_up 0.0" in body
    assert b'gpuwarden_collector_success{collector="gpu"} 1.0' in body
    assert b'gpuwarden_health_state{component="gpu.driver",state="UNHEALTHY"} 1.0' in body


def test_the_nvml_thread_refuses_new_work_while_a_call_hangs_and_recovers_after() -> None:
    thread = NvmlThread()
    release = threading.Event()
    try:
        try:
            thread.run("stuck", release.wait, 0.05)
            raise AssertionError("expected DriverUnresponsive")
        except DriverUnresponsive as err:
            assert err.job == "stuck"
        try:
            thread.run("next", lambda: 1, 5.0)
            raise AssertionError("expected DriverUnresponsive")
        except DriverUnresponsive as err:
            assert err.job == "stuck"  # the report names the call that hangs, not the one refused
        release.set()
        deadline = time.monotonic() + 2
        while thread.hung and time.monotonic() < deadline:
            time.sleep(0.01)
        assert thread.run("next", lambda: 42, 1.0) == 42
    finally:
        release.set()
        thread.stop()


def test_errors_inside_a_job_reach_the_caller() -> None:
    thread = NvmlThread()
    try:
        try:
            thread.run("boom", lambda: 1 / 0, 1.0)
            raise AssertionError("expected ZeroDivisionError")
        except ZeroDivisionError:
            pass
    finally:
        thread.stop()
