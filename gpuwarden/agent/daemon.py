"""The agent's lifecycle: start, first collection, READY, schedule, reload on SIGHUP, stop on SIGTERM."""

from __future__ import annotations

import functools
import logging
import os
import resource
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import gpuwarden
from gpuwarden import config as configmod
from gpuwarden.agent import logs, malloc
from gpuwarden.agent.context import build_collector
from gpuwarden.agent.health_store import HealthStore
from gpuwarden.agent.http import Route, Router, Stats
from gpuwarden.agent.registry import REGISTRY, Collector, CollectorSettings
from gpuwarden.agent.runner import Runner
from gpuwarden.agent.schedule import Scheduler
from gpuwarden.agent.sdnotify import Notifier
from gpuwarden.agent.server import HTTPServer, agent_routes
from gpuwarden.config import AgentConfig, ConfigError

if TYPE_CHECKING:  # kazoo is imported only when the fleet or the engine is enabled (bench/footprint.py)
    from gpuwarden.agent.api import Api
    from gpuwarden.fleet.member import FleetMember
    from gpuwarden.remediations.engine import Engine
    from gpuwarden.remediations.registry import Standing

# How often the fleet registration republishes this node's health summary.
FLEET_REFRESH_SECONDS = 15.0
# How often memory freed since (NVML's start-up, collections) goes back to the kernel
# (gpuwarden/agent/malloc.py): ~55 us a time, against ~1 MB of RSS the heap otherwise keeps on a GPU node.
MALLOC_TRIM_SECONDS = 15.0
# SIGTERM to exit, whatever a collector, a handler or a client is doing: below the unit's TimeoutStopSec=10s
# and the 5 s that docs/operations.md promises. Orderly steps are bounded; this is the backstop.
EXIT_DEADLINE_SECONDS = 4.0


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        config_path: str | None,
        listen_override: str | None,
        log_format_override: str | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.listen_override = listen_override
        self.log_format_override = log_format_override
        self.log = self._setup_logging(config)
        self.health = HealthStore()
        self.runner = Runner(self.health, self.log.getChild("runner"))
        self.notifier = Notifier()
        self.scheduler = Scheduler(self.log.getChild("schedule"))
        self.server: HTTPServer | None = None
        self.router = Router(agent_routes(self.runner, self.health, self.alive))
        self.http_stats = Stats()
        self.runner.add_source(self.http_stats)
        self.fleet: FleetMember | None = None
        self.engine: Engine | None = None
        self.standing: Standing | None = None  # the engine's standing series while it is off
        self._unsubscribe: Callable[[], object] | None = None
        # /v1 exists only when `api.token_file` is set at start; a reload swaps its tokens.
        self.api = self._build_api(config)
        for route in self.api.routes() if self.api else []:
            self.router.add(route)
        self._wake = threading.Event()
        self._signals, self._signals_in = socket.socketpair()
        self._signals_in.setblocking(False)
        self._stop = False
        self._reload = False

    def _build_api(self, config: AgentConfig) -> Api | None:
        if config.api.token_file is None:
            return None  # and its modules stay unloaded (bench/footprint.py)
        from gpuwarden.agent import api

        return api.build(config, lambda: self.engine, lambda: self.fleet, self.log.getChild("api"))

    def _setup_logging(self, config: AgentConfig) -> logging.Logger:
        return logs.setup(config.agent.log_level, self.log_format_override or config.agent.log_format)

    def listen(self, config: AgentConfig) -> str:
        return self.listen_override or config.agent.listen

    def add_route(self, route: Route) -> None:
        """Serve `route` too (the remediation API's /v1/...); works before and after `run`, across reloads."""
        self.router.add(route)

    # -- lifecycle ------------------------------------------------------------------------------------
    def run(self) -> int:
        malloc.tune()  # before any thread of ours starts
        threading.Thread(target=self._dispatch_signals, name="signals", daemon=True).start()
        # Collections run in threads; a scrape that arrives during one waits for the GIL, which the
        # collecting thread gives up only every switch interval (5 ms by default, several hand-offs per
        # request). 1 ms keeps a scrape's p99 near its p50 (bench/scrape.py) for a few more switches.
        sys.setswitchinterval(0.001)
        signal.set_wakeup_fd(self._signals_in.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        _raise_fd_limit(self.config.agent.http.max_connections + 256)
        self.server = self._start_server(self.config)
        self.log.info("gpuwarden %s serving on %s", gpuwarden.__version__, self.server.address)
        self.scheduler.start()
        self.scheduler.add("malloc-trim", malloc.trim, MALLOC_TRIM_SECONDS)
        self._install_collectors(self.config)
        self._install_fleet(self.config, None)  # after the first collection: it registers real health
        self._install_engine(self.config, None)
        names = ", ".join(self.runner.names()) or "none"
        self.notifier.notify("READY=1", f"STATUS=serving on {self.server.address}; collectors: {names}")
        self.log.info("first collection done; collectors: %s", names)
        if self.notifier.watchdog_interval:
            threading.Thread(target=self._watchdog, name="watchdog", daemon=True).start()
        while not self._stop:
            # Signals arrive through `_dispatch_signals` (see `_on_signal`); the timeout is a second guard.
            self._wake.wait(1.0)
            self._wake.clear()
            if self._reload and not self._stop:
                self._reload = False
                self.reload()
        self.shutdown()
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Nothing: Python runs this in the main thread only, and only once that thread runs again; the
        kernel may hand the signal to another thread while the main one sleeps in a join or a wait (a
        reload then never came). The C-level handler writes the signal number to the wakeup socket from
        whichever thread got it, and `_dispatch_signals` acts on it at once."""

    def _dispatch_signals(self) -> None:
        while True:
            for signum in self._signals.recv(64):
                if signum == signal.SIGHUP:
                    self._reload = True
                elif signum in (signal.SIGTERM, signal.SIGINT) and not self._stop:
                    self._stop = True
                    threading.Thread(target=self._exit_deadline, name="exit-deadline", daemon=True).start()
            self._wake.set()

    def _exit_deadline(self) -> None:
        time.sleep(EXIT_DEADLINE_SECONDS)
        self.log.warning("still stopping after %gs (a stuck collector?): exiting now", EXIT_DEADLINE_SECONDS)
        for handler in self.log.handlers:
            handler.flush()
        os._exit(0)

    def shutdown(self) -> None:
        self.notifier.notify("STOPPING=1", "STATUS=stopping")
        self.log.info("stopping")
        self.scheduler.shutdown()
        if self.server:
            self.server.stop()
        # Closing can block on a hung driver; never let it hold up the exit past systemd's patience.
        closer = threading.Thread(target=self._close_all, name="close", daemon=True)
        closer.start()
        closer.join(timeout=2.0)

    def _close_all(self) -> None:
        self._install_engine(None, self.config)
        if self.fleet:
            self.fleet.stop()  # deletes the ephemeral registration now, not a session timeout later
        self.runner.close()

    def _watchdog(self) -> None:
        """WATCHDOG=1 every WatchdogSec/2, but only while collections complete and render: a wedged scheduler
        or runner stops the pings and systemd restarts the agent. A hung collector does not: its runs end at
        their deadline (or are skipped) and render as failures, and the other collectors keep rendering."""
        interval = self.notifier.watchdog_interval or 1.0
        starved = False
        while not self._stop:
            # WatchdogSec, or two rounds of the fastest collector when that is slower.
            limit = max(2 * interval, 2 * self._shortest_interval())
            age = time.monotonic() - self.runner.exposition.rendered_at
            fresh = age <= limit or not self.runner.names()  # no collector: nothing can render
            if self.scheduler.running and fresh:
                self.notifier.notify("WATCHDOG=1")
                starved = False
            elif not starved:
                starved = True
                self.log.error("no collection has rendered for %.1fs: not feeding the watchdog", age)
                self.notifier.notify(f"STATUS=wedged: no collection rendered for {age:.0f}s")
            time.sleep(interval)

    def _shortest_interval(self) -> float:
        intervals = [self.config.collector_settings(n).interval for n in self.runner.names()]
        return min(intervals, default=0.0)

    def alive(self) -> bool:
        return bool(self.scheduler.running)

    # -- building -------------------------------------------------------------------------------------
    def _start_server(self, config: AgentConfig) -> HTTPServer:
        agent, log = config.agent, self.log.getChild("http")
        limits = agent.http.limits()
        server = HTTPServer(self.listen(config), agent.tls, self.router, limits, self.http_stats, log)
        server.start()
        return server

    def _build_collectors(
        self, config: AgentConfig, old: AgentConfig | None
    ) -> dict[str, tuple[Collector, CollectorSettings]]:
        built: dict[str, tuple[Collector, CollectorSettings]] = {}
        for name in sorted(REGISTRY):
            settings = config.collector_settings(name)
            if not settings.enabled:
                continue
            running = self.runner.collector(name)
            if running is not None and old is not None and _same_inputs(name, old, config):
                # Kept as it is: a reload neither re-initialises NVML nor starts a second thread beside a
                # call that is stuck in the driver (the runner skips a collector whose last call hangs).
                built[name] = (running, settings)
                continue
            try:
                built[name] = (build_collector(name, config, self.log), settings)
            except Exception as err:
                self.log.error("collector %s cannot start: %s", name, err)
                self.health.mark_unknown(name, f"collector {name} cannot start: {err}")
        return built

    def _install_collectors(self, config: AgentConfig, old: AgentConfig | None = None) -> None:
        """Replace the collector set, run each once (so READY means data is there), then schedule."""
        for name in self.runner.names():
            self.scheduler.remove(name)
        self.runner.set_collectors(self._build_collectors(config, old))
        first = [
            threading.Thread(target=self.runner.run, args=(n,), daemon=True) for n in self.runner.names()
        ]
        for t in first:
            t.start()
        for t in first:
            t.join()
        for name in self.runner.names():
            interval = config.collector_settings(name).interval
            self.scheduler.add(name, functools.partial(self.runner.run, name), interval)

    def _fleet_summary(self) -> dict[str, object]:
        from gpuwarden.fleet.member import summarize

        gpu = self.runner.collector("gpu")
        inventory = getattr(gpu, "inventory", None)
        gpus = inventory() if callable(inventory) else []
        return summarize(self.health.results(), gpuwarden.__version__, gpus)

    def _install_fleet(self, config: AgentConfig, old: AgentConfig | None) -> None:
        """Join the fleet (never blocks: the session connects in the background); rejoin on a new config."""
        if old is not None and old.fleet == config.fleet:
            return
        if self.fleet:
            self.scheduler.remove("fleet")
            self.fleet.stop()
            self.fleet = None
        if config.fleet.enabled:
            from gpuwarden.fleet.member import FleetMember

            endpoint = self.server.address if self.server else None  # Prometheus finds /metrics here
            self.fleet = FleetMember(config.fleet, self._fleet_summary, endpoint=endpoint).start()
            self.scheduler.add("fleet", self.fleet.refresh, FLEET_REFRESH_SECONDS)
            self.log.info("joining fleet %s as %s", config.fleet.cluster, config.fleet.node_name())

    def _install_engine(self, config: AgentConfig | None, old: AgentConfig | None) -> None:
        """Start the remediation engine; on a changed `remediation:` section, replace it (its supervised
        processes are stopped with it: the agent is their supervisor). With the engine off, what its
        playbooks left on the node (quarantined GPUs) is still exported (registry.Standing)."""
        if config is not None and old is not None and old.remediation == config.remediation:
            return
        if self.engine is not None:
            if self._unsubscribe:
                self._unsubscribe()
            self.runner.remove_source(self.engine)
            self.engine.stop(stop_targets=True)
            self.engine = None
        if self.standing is not None:
            self.runner.remove_source(self.standing)
            self.standing = None
        if config is None:
            return
        if not config.remediation.enabled:
            from gpuwarden.remediations.registry import Standing

            self.standing = Standing(config.remediation.playbook)
            self.runner.add_source(self.standing)
            return
        from gpuwarden.remediations.engine import Engine, health_lookup

        self.engine = Engine(
            config.remediation,
            health=health_lookup(self.health.results),
            budget=lambda: self.fleet.budget if self.fleet else None,
            fleet=lambda: self.fleet,
            inventory=self._gpu_inventory,
            log=self.log.getChild("remediation"),
        ).start()
        subscribe = getattr(self.health, "subscribe", None)  # the health stream's HealthStore.subscribe
        self._unsubscribe = subscribe(self.engine.on_transition) if subscribe else None
        self.runner.add_source(self.engine)
        self.log.info("remediation engine started: %s", ", ".join(self.engine.playbooks) or "no playbooks")

    def _gpu_inventory(self) -> dict[str, str]:
        """GPU index → UUID as the GPU collector last saw them (gpu_quarantine names GPUs by UUID)."""
        identity = getattr(self.runner.collector("gpu"), "identity", None) or {}
        return {str(index): uuid for index, (uuid, _) in identity.items()}

    def reload(self) -> None:
        """Apply the config file again; one that cannot be read or applied leaves the running one in place.

        Never raises: SIGHUP with any file (not UTF-8, nested too deep, a listen address in use) must not
        end the agent.
        """
        self.log.info("reloading configuration from %s", self.config_path or "built-in defaults")
        self.notifier.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            new = configmod.load(self.config_path)
            self._apply(new)
        except ConfigError as err:
            for problem in err.problems:
                self.log.error("config: %s", problem)
            self._reload_failed()
            return
        except Exception:  # a bug must cost this reload, not the agent
            self.log.exception("cannot apply the new configuration")
            self._reload_failed()
            return
        self.notifier.notify("READY=1", "STATUS=configuration reloaded")
        self.log.info("configuration reloaded")

    def _reload_failed(self) -> None:
        self.log.error("reload failed; keeping the running configuration")
        self.runner.reload_ok = False
        self.runner.render()
        self.notifier.notify("READY=1", "STATUS=reload failed; running the previous configuration")

    def _apply(self, new: AgentConfig) -> None:
        """Switch to `new`: the listener first (the step that can fail), then logging, collectors, fleet."""
        old = self.config
        served = (self.listen(new), new.agent.tls, new.agent.http)
        moved = (self.listen(new), new.agent.tls) != (self.listen(old), old.agent.tls)
        if served != (self.listen(old), old.agent.tls, old.agent.http) and self.server:
            self.server.stop()
            try:
                self.server = self._start_server(new)
            except OSError as err:
                self.server = self._start_server(old)  # the old address was ours a moment ago
                reason = os.strerror(err.errno) if err.errno else str(err)
                raise ConfigError([f"agent.listen: cannot listen on {self.listen(new)}: {reason}"]) from None
            self.log.info("now serving on %s", self.server.address)
        self.config = new
        self.log = self._setup_logging(new)
        # Before the collectors' first run, whose render is the first to show it.
        self.runner.reload_ok, self.runner.reload_timestamp = True, time.time()
        self._install_collectors(new, old)
        self._install_fleet(new, None if moved else old)  # a new address means a new serverset endpoint
        self._install_engine(new, old)
        if self.api:
            self.api.reload(new)
        elif new.api.token_file:
            self.log.warning("api.token_file was added: the /v1 API starts with the next restart")


def _same_inputs(name: str, old: AgentConfig, new: AgentConfig) -> bool:
    """Whether collector `name` would be built the same: its settings and the shared sections unchanged."""
    shared = {"agent", "collectors", "remediation"}
    return old.collector_settings(name) == new.collector_settings(name) and old.model_dump(
        exclude=shared
    ) == new.model_dump(exclude=shared)


def _raise_fd_limit(wanted: int) -> None:
    """Lift the soft descriptor limit toward `wanted` (Go's runtime lifts it to the hard limit at start):
    outside systemd (LimitNOFILE=65536) it is often 1024, below the HTTP connection limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
