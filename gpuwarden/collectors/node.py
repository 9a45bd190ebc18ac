"""Node collector: host memory, load, transparent huge pages, hugepages and disk usage.

Reads /proc/meminfo, /proc/loadavg, /sys/kernel/mm/transparent_hugepage/enabled and statvfs() of the
configured paths, all through `Paths`. Needs no privileges. THP and hugepages matter for inference nodes:
NVIDIA's and the LLM serving guides recommend THP `never` (or `madvise`) to avoid khugepaged stalls.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from pydantic import ByteSize, Field, model_validator

from gpuwarden.agent.registry import CollectorContext, CollectorSettings, Item, register
from gpuwarden.catalog import Families, MetricSpec
from gpuwarden.config_base import StrictModel
from gpuwarden.health import Action, HealthResult, State
from gpuwarden.paths import read_text
from gpuwarden.readers.host import THP_MODES, read_meminfo, read_thp_mode


class DiskPath(StrictModel):
    """A path to watch; `min_free` is the free space it must keep (the doctor's preflight checks it too)."""

    path: str = Field(description="mount point or directory, e.g. / or the model volume")
    min_free: ByteSize | None = Field(
        None, description='free space it must keep, e.g. "50GiB"; below it node.disk is DEGRADED'
    )

    @model_validator(mode="before")
    @classmethod
    def _plain_path(cls, v: Any) -> Any:
        """`- /` is short for `- {path: /}`."""
        if isinstance(v, str):
            return {"path": v}
        if isinstance(v, dict | DiskPath):
            return v
        raise ValueError("must be a string (a path) or a mapping {path, min_free}")


class NodeSettings(CollectorSettings):
    disk_paths: list[DiskPath] = Field(
        default_factory=lambda: [DiskPath(path="/")],
        description="mount points to watch: a path, or {path, min_free} "
        '(e.g. {path: /models, min_free: "50GiB"})',
    )
    # Below this share of MemAvailable the node is DEGRADED: the page cache is gone and the OOM killer is
    # next, which for an inference worker means a lost process and a cold model reload.
    memory_available_min_ratio: float = Field(
        0.05, ge=0, le=1, description="MemAvailable/MemTotal below which node.memory is DEGRADED"
    )
    disk_free_min_ratio: float = Field(
        0.10, ge=0, le=1, description="available/size of a disk path below which node.disk is DEGRADED"
    )


GiB = 1 << 30

CATALOG = (
    MetricSpec("gpuwarden_node_memory_total_bytes", "gauge", "Total usable RAM (MemTotal).", unit="bytes"),
    MetricSpec(
        "gpuwarden_node_memory_available_bytes",
        "gauge",
        "RAM available for new work without swapping (MemAvailable).",
        unit="bytes",
    ),
    MetricSpec("gpuwarden_node_memory_free_bytes", "gauge", "Unused RAM (MemFree).", unit="bytes"),
    MetricSpec("gpuwarden_node_swap_total_bytes", "gauge", "Total swap (SwapTotal).", unit="bytes"),
    MetricSpec("gpuwarden_node_swap_free_bytes", "gauge", "Unused swap (SwapFree).", unit="bytes"),
    MetricSpec("gpuwarden_node_load1", "gauge", "1-minute load average."),
    MetricSpec("gpuwarden_node_load5", "gauge", "5-minute load average."),
    MetricSpec("gpuwarden_node_load15", "gauge", "15-minute load average."),
    MetricSpec(
        "gpuwarden_node_transparent_hugepages_mode",
        "gauge",
        "Transparent huge pages mode: 1 for the active mode (always, madvise, never), 0 for the others.",
        labels=("mode",),
    ),
    MetricSpec(
        "gpuwarden_node_hugepages_configured",
        "gauge",
        "Size of the persistent hugepage pool (HugePages_Total).",
    ),
    MetricSpec("gpuwarden_node_hugepages_free", "gauge", "Hugepages not yet allocated (HugePages_Free)."),
    MetricSpec(
        "gpuwarden_node_hugepages_reserved", "gauge", "Hugepages reserved but not allocated (HugePages_Rsvd)."
    ),
    MetricSpec("gpuwarden_node_hugepage_size_bytes", "gauge", "Default hugepage size.", unit="bytes"),
    MetricSpec(
        "gpuwarden_node_filesystem_size_bytes", "gauge", "Filesystem size.", labels=("path",), unit="bytes"
    ),
    MetricSpec(
        "gpuwarden_node_filesystem_avail_bytes",
        "gauge",
        "Filesystem space available to unprivileged users.",
        labels=("path",),
        unit="bytes",
    ),
)


def parse_loadavg(text: str) -> tuple[float, float, float]:
    fields = text.split()
    return float(fields[0]), float(fields[1]), float(fields[2])


@register("node", NodeSettings)
class NodeCollector:
    def __init__(self, settings: NodeSettings, ctx: CollectorContext) -> None:
        self.settings = settings
        self.paths = ctx.paths

    def close(self) -> None:
        pass  # every read opens and closes its own file

    def collect(self) -> Iterator[Item]:
        fams = Families(CATALOG)
        yield from self._memory(fams)
        loadavg = read_text(self.paths.proc("loadavg"))
        if loadavg:
            for name, value in zip(("load1", "load5", "load15"), parse_loadavg(loadavg), strict=True):
                fams.add(f"gpuwarden_node_{name}", value)
        mode = read_thp_mode(self.paths)
        if mode:
            for candidate in THP_MODES:
                fams.add("gpuwarden_node_transparent_hugepages_mode", candidate == mode, mode=candidate)
        yield from self._disks(fams)
        yield from fams

    def _memory(self, fams: Families) -> Iterator[HealthResult]:
        mem = read_meminfo(self.paths)
        if mem is None:
            yield HealthResult("node.memory", State.UNKNOWN, "cannot read meminfo")
            return
        for key, name in (
            ("MemTotal", "memory_total_bytes"),
            ("MemAvailable", "memory_available_bytes"),
            ("MemFree", "memory_free_bytes"),
            ("SwapTotal", "swap_total_bytes"),
            ("SwapFree", "swap_free_bytes"),
            ("HugePages_Total", "hugepages_configured"),
            ("HugePages_Free", "hugepages_free"),
            ("HugePages_Rsvd", "hugepages_reserved"),
            ("Hugepagesize", "hugepage_size_bytes"),
        ):
            if key in mem:
                fams.add(f"gpuwarden_node_{name}", mem[key])
        total, available = mem.get("MemTotal"), mem.get("MemAvailable")
        if not total or available is None:
            yield HealthResult("node.memory", State.UNKNOWN, "meminfo lacks MemTotal or MemAvailable")
        elif available / total < self.settings.memory_available_min_ratio:
            yield HealthResult(
                "node.memory",
                State.DEGRADED,
                f"only {available / total:.1%} of memory available "
                f"(threshold {self.settings.memory_available_min_ratio:.0%})",
                Action.FREE_RESOURCES,
            )
        else:
            yield HealthResult("node.memory", State.HEALTHY, f"{available / total:.1%} of memory available")

    def _disks(self, fams: Families) -> Iterator[HealthResult]:
        low, missing = [], []
        for disk in self.settings.disk_paths:
            path = disk.path
            try:
                st = os.statvfs(self.paths.root(path))
            except OSError as err:
                missing.append(f"{path} ({err.strerror})")
                continue
            size, avail = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
            fams.add("gpuwarden_node_filesystem_size_bytes", size, path=path)
            fams.add("gpuwarden_node_filesystem_avail_bytes", avail, path=path)
            if size and avail / size < self.settings.disk_free_min_ratio:
                low.append(f"{path} {avail / size:.1%} free")
            elif disk.min_free is not None and avail < disk.min_free:
                low.append(f"{path} {avail / GiB:.1f} GiB free, needs {disk.min_free / GiB:.1f} GiB")
        if low:
            yield HealthResult(
                "node.disk", State.DEGRADED, "low disk space: " + ", ".join(low), Action.FREE_RESOURCES
            )
        elif missing:
            yield HealthResult(
                "node.disk", State.UNKNOWN, "cannot stat: " + ", ".join(missing), Action.FIX_CONFIG
            )
        else:
            yield HealthResult("node.disk", State.HEALTHY, f"{len(self.settings.disk_paths)} path(s) checked")
