"""The collector runner: deadlines, isolation, self-metrics, and the pre-rendered exposition.

Each collection runs in its own daemon thread; the caller waits at most the collector's timeout. A
collector that raises, hangs or yields garbage is recorded (`gpuwarden_collector_success 0`), its series
are dropped (a stale number is worse than a missing one) and its health turns UNKNOWN; nothing else is
affected. A hung collector is not started again until its previous call returns, so a driver stuck in D
state costs one thread, not one thread per interval. After a collection only that collector's families
are rendered, once, and kept as bytes; the exposition `/metrics` serves (plain and gzip) is the agent's own
series followed by every collector's cached bytes, joined. A fast collector does not pay for rendering the
others (bench/scrape.py).
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

import gpuwarden
from gpuwarden import promtext
from gpuwarden.agent.health_store import HealthStore
from gpuwarden.agent.registry import CollectionFailed, Collector, CollectorSettings
from gpuwarden.catalog import Families, MetricSpec
from gpuwarden.deadline import DeadlineExceeded, Lane
from gpuwarden.health import HealthResult, State

CATALOG = (
    MetricSpec("gpuwarden_build_info", "gauge", "Always 1; the agent's version.", labels=("version",)),
    MetricSpec(
        "gpuwarden_collector_success",
        "gauge",
        "1 if the collector's last run finished within its deadline without error.",
        labels=("collector",),
    ),
    MetricSpec(
        "gpuwarden_collector_duration_seconds",
        "gauge",
        "Wall time of the collector's last run (its deadline when it timed out).",
        labels=("collector",),
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_collector_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the collector's last successful run.",
        labels=("collector",),
        unit="seconds",
    ),
    MetricSpec(
        "gpuwarden_collector_errors_total",
        "counter",
        "Runs that raised an error or reported a failed collection (a broken or unreachable source).",
        labels=("collector",),
    ),
    MetricSpec(
        "gpuwarden_collector_timeouts_total",
        "counter",
        "Runs that missed their deadline or were skipped because the previous run still hangs.",
        labels=("collector",),
    ),
    MetricSpec(
        "gpuwarden_health_state",
        "gauge",
        "1 for the component's current health state, 0 for the other states.",
        labels=("component", "state"),
    ),
    MetricSpec(
        "gpuwarden_config_last_reload_successful",
        "gauge",
        "1 if the last configuration (re)load succeeded; 0 means the agent runs on its previous config.",
    ),
    MetricSpec(
        "gpuwarden_config_last_reload_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful configuration load.",
        unit="seconds",
    ),
)


@dataclass
class CollectorState:
    collector: Collector
    settings: CollectorSettings
    rendered: bytes = b""  # the exposition of its last successful collection's families
    success: bool = False
    ran: bool = False
    duration: float = 0.0
    last_success: float = 0.0
    errors: int = 0
    timeouts: int = 0
    lane: Lane = field(default_factory=lambda: Lane("collect"))


class Exposition:
    """The bytes `/metrics` serves: rendered once per collection, read without locks by the server."""

    def __init__(self) -> None:
        self.plain = b""
        self.gzipped = b""
        self.rendered_at = time.monotonic()  # the watchdog is fed only while this stays recent


class Runner:
    def __init__(self, health: HealthStore, log: logging.Logger) -> None:
        self.health = health
        self.log = log
        self.exposition = Exposition()
        self._states: dict[str, CollectorState] = {}
        self._lock = threading.Lock()  # guards _states and rendering
        self.reload_ok = True
        self.reload_timestamp = time.time()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Snapshot(self))
        # The agent's own process metrics: this reads the agent's own /proc/self, not the host roots.
        self._registry.register(ProcessCollector(registry=None))

    def add_source(self, source: object) -> None:
        """Series that are not a collector's (HTTP counters, the remediation engine): in every exposition."""
        self._registry.register(source)  # type: ignore[arg-type]

    def remove_source(self, source: object) -> None:
        self._registry.unregister(source)  # type: ignore[arg-type]

    # -- collector set -------------------------------------------------------------------------------
    def set_collectors(self, collectors: dict[str, tuple[Collector, CollectorSettings]]) -> None:
        """Swap in a new collector set (start, reload); closes the collectors it replaces."""
        with self._lock:
            old = self._states
            self._states = {
                # A collector kept across a reload keeps its state, above all a call still hanging.
                name: old[name] if name in old and old[name].collector is c else CollectorState(c, s)
                for name, (c, s) in collectors.items()
            }
        for name, state in old.items():
            if name not in collectors:
                self.health.drop(name)
            if self._states.get(name) is not state:
                _close(state.collector, name, self.log)
        self.render()

    def collector(self, name: str) -> Collector | None:
        with self._lock:
            state = self._states.get(name)
        return state.collector if state else None

    def names(self) -> list[str]:
        with self._lock:
            return list(self._states)

    def close(self) -> None:
        self.set_collectors({})

    # -- one run ------------------------------------------------------------------------------------
    def run(self, name: str) -> bool:
        """Run one collection of `name` under its deadline; returns its success."""
        with self._lock:
            state = self._states.get(name)
        if state is None:
            return False
        log = self.log.getChild(name)
        start = time.monotonic()
        try:
            items = state.lane.run(
                lambda: list(state.collector.collect()), state.settings.timeout, name=f"collect-{name}"
            )
        except DeadlineExceeded as err:
            state.timeouts += 1
            if err.busy:
                self._fail(name, state, 0.0, "previous run still hangs")
                hung_for = time.monotonic() - err.since
                log.warning("skipped: previous run has not returned after %.1fs", hung_for)
                return False
            self._fail(name, state, state.settings.timeout, f"timed out after {state.settings.timeout:g}s")
            log.warning("timed out after %gs", state.settings.timeout)
            return False
        except Exception as err:  # a collector bug or an unexpected OS error: isolate it
            state.errors += 1
            duration = time.monotonic() - start
            self._fail(name, state, duration, f"collector error: {type(err).__name__}: {err}")
            log.error("failed after %.3fs: %s: %s", duration, type(err).__name__, err)
            return False
        duration = time.monotonic() - start
        metrics: list[Metric] = []
        results = []
        failed: CollectionFailed | None = None
        for item in items:
            if isinstance(item, HealthResult):
                results.append(item)
            elif isinstance(item, Metric):
                metrics.append(item)
            elif isinstance(item, CollectionFailed):
                failed = item
            else:
                state.errors += 1
                self._fail(name, state, duration, f"collector yielded {type(item).__name__}")
                log.error("yielded an unexpected %s", type(item).__name__)
                return False
        rendered = promtext.render(metrics)  # in the collection's thread, outside the lock
        with self._lock:
            state.rendered, state.success, state.ran, state.duration = (
                rendered,
                failed is None,
                True,
                duration,
            )
            if failed is None:
                state.last_success = time.time()
            else:
                state.errors += 1
        self.health.replace(name, results)
        self.render()
        if failed is not None:
            log.warning("failed: %s", failed.reason)
            return False
        log.debug("collected %d families in %.3fs", len(metrics), duration)
        return True

    def _fail(self, name: str, state: CollectorState, duration: float, reason: str) -> None:
        with self._lock:
            state.rendered, state.success, state.ran, state.duration = b"", False, True, duration
        self.health.mark_unknown(name, f"collector {name}: {reason}")
        self.render()

    # -- rendering ----------------------------------------------------------------------------------
    def render(self) -> None:
        with self._lock:
            # Families of different collectors never share a name (gpuwarden_<collector>_*), so the
            # rendered parts join into one valid exposition.
            parts = [
                promtext.render(self._registry.collect()),
                *(st.rendered for _, st in sorted(self._states.items())),
            ]
            plain = b"".join(parts)
            exposition = Exposition()
            exposition.plain, exposition.gzipped = plain, gzip.compress(plain, compresslevel=1)
            self.exposition = exposition  # one reference swap: readers see old or new, never half

    def snapshot(self) -> Iterator[Metric]:
        """Called by the registry while `render` holds the lock."""
        fams = Families(CATALOG)
        fams.add("gpuwarden_build_info", 1, version=gpuwarden.__version__)
        fams.add("gpuwarden_config_last_reload_successful", self.reload_ok)
        fams.add("gpuwarden_config_last_reload_success_timestamp_seconds", self.reload_timestamp)
        for name, st in sorted(self._states.items()):
            if st.ran:
                fams.add("gpuwarden_collector_success", st.success, collector=name)
                fams.add("gpuwarden_collector_duration_seconds", st.duration, collector=name)
            if st.last_success:
                fams.add(
                    "gpuwarden_collector_last_success_timestamp_seconds", st.last_success, collector=name
                )
            fams.add("gpuwarden_collector_errors_total", st.errors, collector=name)
            fams.add("gpuwarden_collector_timeouts_total", st.timeouts, collector=name)
        for result in self.health.results():
            for candidate in State:
                fams.add(
                    "gpuwarden_health_state",
                    result.state == candidate,
                    component=result.component,
                    state=str(candidate),
                )
        yield from fams


class _Snapshot:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def collect(self) -> Iterator[Metric]:
        return self.runner.snapshot()


def _close(collector: Collector, name: str, log: logging.Logger) -> None:
    try:
        collector.close()
    except Exception as err:
        log.warning("closing collector %s: %s", name, err)
