"""Per-process GPU memory, aggregated by systemd unit: PIDs never become label values.

A process's unit is the last component of its cgroup v2 path (/proc/PID/cgroup `0::/system.slice/
vllm.service` → `vllm.service`). Container scopes carry an id (`docker-<64 hex>.scope`) that changes on every
restart, so those fold into their parent slice to keep the label set bounded.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from gpuwarden.paths import Paths, read_text

_ID = re.compile(r"[0-9a-f]{12,}")


def unit_of(cgroup_text: str | None) -> str:
    if not cgroup_text:
        return "unknown"
    for line in cgroup_text.splitlines():
        if line.startswith("0::"):
            parts = [p for p in line[3:].strip().split("/") if p]
            while parts and _ID.search(parts[-1]):
                parts.pop()
            return parts[-1] if parts else "root"
    return "unknown"


class UnitCache:
    """pid → unit, kept while NVML lists the pid: a process does not change its cgroup, and reading
    /proc/PID/cgroup every cycle for every process is most of a busy GPU's per-cycle cost besides NVML."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self._units: dict[int, str] = {}

    def memory_by_unit(self, processes: list[dict[str, Any]]) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for proc in processes:
            pid = int(proc["pid"])
            unit = self._units.get(pid)
            if unit is None:
                unit = self._units[pid] = unit_of(read_text(self.paths.proc(str(pid), "cgroup")))
            out[unit] += int(proc.get("used_bytes") or 0)
        return dict(out)

    def forget_except(self, pids: set[int]) -> None:
        """Drop pids no GPU lists any more (their number may be reused by another process)."""
        for pid in set(self._units) - pids:
            del self._units[pid]
