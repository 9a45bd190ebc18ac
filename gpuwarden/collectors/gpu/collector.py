"""GPU collector on NVML: full signal set, XIDs from two sources, and health that survives a hung driver.

NVML is reached through an injected backend (nvml_backend.py on a node, replay.py in CI) and only on one
dedicated thread, one job per cycle, with a deadline (nvml_thread.py). Values that are expensive or cannot
change are read on `slow_interval` and their families are built once per read; the every-cycle part costs
a few hundred microseconds per GPU (bench/results/gpu-h200-*.txt). See docs/gpu.md for the runbook.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.metrics_core import Metric

from gpuwarden.agent.registry import CollectorContext, Item, register
from gpuwarden.catalog import Families
from gpuwarden.collectors.gpu import checks
from gpuwarden.collectors.gpu.backend import (
    GPU_IS_LOST,
    NOT_SUPPORTED,
    RESET_REQUIRED,
    Backend,
    NvmlCallError,
    NvmlUnavailable,
)
from gpuwarden.collectors.gpu.events import XidWatcher
from gpuwarden.collectors.gpu.families import Labels, add_fast, add_slow
from gpuwarden.collectors.gpu.kmsg import KmsgReader
from gpuwarden.collectors.gpu.metrics import CATALOG, ok
from gpuwarden.collectors.gpu.nvml_thread import DriverUnresponsive, NvmlThread
from gpuwarden.collectors.gpu.procs import UnitCache
from gpuwarden.collectors.gpu.queries import FAST, SLOW
from gpuwarden.collectors.gpu.settings import GpuSettings
from gpuwarden.collectors.gpu.xid import XidLedger
from gpuwarden.collectors.gpu.xid_collect import collect_xids
from gpuwarden.health import Action, HealthResult, State

__all__ = ["GpuCollector", "GpuSettings", "make_backend"]


def make_backend(settings: GpuSettings) -> Backend:
    if settings.backend == "replay":
        from gpuwarden.collectors.gpu.replay import ReplayBackend

        return ReplayBackend.from_file(str(settings.replay_file))
    from gpuwarden.collectors.gpu.nvml_backend import NvmlBackend

    return NvmlBackend()


@register("gpu", GpuSettings)
class GpuCollector:
    def __init__(self, settings: GpuSettings, ctx: CollectorContext, backend: Backend | None = None) -> None:
        self.settings = settings
        self.paths = ctx.paths
        self.log = ctx.log.getChild("gpu")
        self._backend = backend  # None: built from settings on the first cycle (no slow I/O here)
        self._thread: NvmlThread | None = None
        self._system: dict[str, Any] | None = None
        self._unavailable: NvmlUnavailable | None = None
        self.identity: dict[int, tuple[str, str]] = {}  # index → (uuid, pci bus id)
        self._previous: dict[int, dict[str, Any]] = {}
        self._labels: dict[int, Labels] = {}  # by GPU index; replaced when its UUID changes
        self._slow: dict[int, dict[str, Any]] = {}
        self._last_slow = float("-inf")
        self._slow_metrics: list[Metric] = []
        self._slow_for: tuple[int, ...] | None = None
        # NOT_SUPPORTED does not change while the driver is loaded: ask once, then skip.
        self._unsupported: dict[int, set[str]] = {}
        self.units = UnitCache(self.paths)
        self.watcher: XidWatcher | None = None
        self.kmsg = KmsgReader(self.paths.dev("kmsg")) if settings.kmsg else None
        self.xids = XidLedger(
            settings.xid_actions,
            settings.xid_dedup_window,
            settings.xid_lookback,
            settings.xid_escalate_after,
            settings.xid_escalate_window,
            settings.xid_burst_window,
        )

    @property
    def driver_version(self) -> str | None:
        return (self._system or {}).get("driver_version")

    def _start(self) -> None:
        """Initialise NVML once, on the NVML thread (nvmlInit can hang too); retried while it fails."""
        if self._backend is None:
            self._backend = make_backend(self.settings)
        if self._thread is None:
            self._thread = NvmlThread()
        try:
            self._system = self._thread.run("nvmlInit", self._backend.init, self.settings.call_timeout)
        except NvmlUnavailable as err:
            self._unavailable = err
            return
        if self.settings.nvml_events and self.watcher is None:
            self.watcher = XidWatcher(self._backend, self.log)
            self.watcher.start()

    def close(self) -> None:
        """Release NVML without ever blocking a reload or shutdown on a hung driver."""
        if self.watcher:
            self.watcher.stop()
            self.watcher.join(2.0)  # the event set must outlive the wait that uses it
        if self.kmsg:
            self.kmsg.close()
        backend, thread = self._backend, self._thread
        if backend is not None and (self.watcher is None or not self.watcher.alive):
            if thread is not None and not thread.hung:
                with contextlib.suppress(DriverUnresponsive):
                    thread.run("nvmlShutdown", backend.shutdown, self.settings.call_timeout)
            else:  # a call hangs: nvmlShutdown would wait for it; let a daemon thread try
                threading.Thread(target=backend.shutdown, name="nvml-shutdown", daemon=True).start()
        if thread:
            thread.stop()

    def inventory(self) -> list[dict[str, object]]:
        """The GPUs seen so far, for the fleet registration (`gpuwarden fleet ls`)."""
        return [
            {"index": index, "uuid": uuid, "pci_bus_id": bus}
            for index, (uuid, bus) in sorted(self.identity.items())
        ]

    def collect(self) -> Iterator[Item]:
        fams = Families(CATALOG)
        results: list[HealthResult] = []
        slow: list[Metric] = []
        try:
            if self._system is None:
                self._start()
            if self._system is None:
                fams.add("gpuwarden_gpu_nvml_up", 0)
                results.append(_unavailable_health(self._unavailable))
            else:
                slow = self._cycle(fams, results)
        except (NvmlCallError, DriverUnresponsive) as err:
            # nvmlDeviceGetCount failed, or the NVML job hung. Both are raised by the cycle's one NVML job,
            # before any sample or result was added: nothing half-collected is exported.
            fams.add("gpuwarden_gpu_nvml_up", 0)
            kind = "NVML error" if isinstance(err, NvmlCallError) else "driver_unresponsive"
            results.append(HealthResult("gpu.driver", State.UNHEALTHY, f"{kind}: {err}", Action.REBOOT_NODE))
        collect_xids(self, fams, results, time.time())
        yield from results
        yield from fams
        yield from slow

    def _cycle(self, fams: Families, results: list[HealthResult]) -> list[Metric]:
        assert self._thread is not None and self._backend is not None
        s, backend = self.settings, self._backend
        slow_due = time.monotonic() - self._last_slow >= s.slow_interval
        keys = FAST + SLOW if slow_due else FAST
        snaps = self._thread.run(
            "one collection", lambda: _all_snapshots(backend, keys, self._unsupported), s.call_timeout
        )
        if slow_due:
            self._last_slow = time.monotonic()
        count = len(snaps)
        fams.add("gpuwarden_gpu_nvml_up", 1)
        fams.add("gpuwarden_gpu_devices", count)
        results.append(
            HealthResult("gpu.driver", State.HEALTHY, f"NVML answers (driver {self.driver_version})")
        )
        if s.expected_gpus:
            fams.add("gpuwarden_gpu_devices_expected", s.expected_gpus)
            if count < s.expected_gpus:
                results.append(
                    HealthResult(
                        "gpu.count",
                        State.UNHEALTHY,
                        f"{count} of {s.expected_gpus} GPUs visible: a GPU fell off the bus",
                        Action.REBOOT_NODE,
                    )
                )
            else:
                results.append(HealthResult("gpu.count", State.HEALTHY, f"{count} of {s.expected_gpus} GPUs"))
        answering = []
        for index, snap in enumerate(snaps):
            # Judged on this cycle's answers only: a slow read that found the GPU lost must not keep it
            # "lost" after a reset until the next slow read, and its partial answers are not kept.
            fatal = checks.fatal_error(snap)
            if not slow_due:
                snap.update(self._slow.get(index, {}))
            elif fatal is None:
                self._keep_slow(index, snap)
            if self._gpu(fams, results, index, snap, fatal):
                answering.append(index)
            self._previous[index] = snap
        self.units.forget_except({int(p["pid"]) for snap in snaps for p in ok(snap, "processes") or []})
        if slow_due or self._slow_for != tuple(answering):
            slow_fams = Families(CATALOG)
            for index in answering:
                add_slow(
                    slow_fams,
                    self._labels_of(index),
                    self._slow.get(index, {}),
                    str(self.driver_version or ""),
                )
            self._slow_metrics, self._slow_for = list(slow_fams), tuple(answering)
        return self._slow_metrics

    def _labels_of(self, index: int) -> Labels:
        uuid = self.identity[index][0]
        labels = self._labels.get(index)
        if labels is None or labels.uuid != uuid:
            labels = self._labels[index] = Labels(str(index), uuid)
        return labels

    def _keep_slow(self, index: int, snap: dict[str, Any]) -> None:
        """Counters read on slow_interval are judged per read; the verdict holds until the next read."""
        replays = (ok(snap, "fields_slow") or {}).get("pcie_replay_counter")
        before = (ok(self._slow.get(index, {}), "fields_slow") or {}).get("pcie_replay_counter")
        if isinstance(replays, int) and isinstance(before, int):
            snap["pcie_replays_delta"] = replays - before
        self._slow[index] = {k: snap[k] for k in (*SLOW, "pcie_replays_delta") if k in snap}

    def _gpu(
        self,
        fams: Families,
        results: list[HealthResult],
        index: int,
        snap: dict[str, Any],
        fatal: NvmlCallError | None,
    ) -> bool:
        """Samples and health for one GPU; False when it did not answer (`fatal`: lost, needs a reset)."""
        s, gpu, comp = self.settings, str(index), f"gpu.{index}"
        if ok(snap, "uuid") is not None:
            self.identity[index] = (ok(snap, "uuid"), (ok(snap, "pci") or {}).get("busId", ""))
        uuid = self.identity.get(index, ("", ""))[0]
        subject = checks.gpu_labels(gpu, uuid)
        results.append(checks.device_health(f"{comp}.device", subject, fatal))
        if fatal is not None or index not in self.identity:
            fams.add("gpuwarden_gpu_up", 0, gpu=gpu, uuid=uuid)
            return False
        labels = self._labels_of(index)  # gpu and uuid, checked once
        fams.append("gpuwarden_gpu_up", labels.base, 1.0)
        procs = ok(snap, "processes")
        add_fast(fams, labels, snap, self.units.memory_by_unit(procs) if procs else {})
        results.append(
            checks.memory_health(
                f"{comp}.memory", subject, snap, self._previous.get(index), s.ecc_storm_errors
            )
        )
        results.append(checks.thermal_health(f"{comp}.thermal", subject, snap, s.thermal_margin_min_celsius))
        for result in (
            checks.pcie_health(f"{comp}.pcie", subject, snap, s.pcie_replay_burst),
            checks.recovery_health(f"{comp}.recovery", subject, snap),
        ):
            if result is not None:
                results.append(result)
        return True


def _unavailable_health(err: NvmlUnavailable | None) -> HealthResult:
    if err is None or err.no_driver:
        return HealthResult("gpu.driver", State.UNKNOWN, f"unsupported: {err}")
    return HealthResult("gpu.driver", State.UNKNOWN, f"NVML cannot start: {err}", Action.FIX_CONFIG)


def _all_snapshots(
    backend: Backend, keys: tuple[str, ...], unsupported: dict[int, set[str]]
) -> list[dict[str, Any]]:
    """Every answer for every GPU, as one job on the NVML thread (one thread hop per cycle)."""
    return [
        _snapshot(backend, i, keys, unsupported.setdefault(i, set())) for i in range(backend.device_count())
    ]


def _snapshot(backend: Backend, index: int, keys: tuple[str, ...], unsupported: set[str]) -> dict[str, Any]:
    """Every answer for one GPU. A lost GPU stops the questions early: every further call answers the same."""
    snap: dict[str, Any] = {}
    for key in keys:
        if key in unsupported:
            continue
        try:
            snap[key] = backend.query(index, key)
        except NvmlCallError as err:
            snap[key] = err
            if err.code == NOT_SUPPORTED:
                unsupported.add(key)
            elif err.code in (GPU_IS_LOST, RESET_REQUIRED):
                break
    return snap
