"""Memory and transparent huge pages: /proc/meminfo and /sys/kernel/mm/transparent_hugepage/enabled."""

from __future__ import annotations

import re

from gpuwarden.paths import Paths, read_text

THP_MODES = ("always", "madvise", "never")


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo → {key: bytes}; hugepage counts (no unit) stay counts."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"^([\w()]+):\s+(\d+)(\s+kB)?", line)
        if m:
            out[m.group(1)] = int(m.group(2)) * (1024 if m.group(3) else 1)
    return out


def read_meminfo(paths: Paths) -> dict[str, int] | None:
    """The host's meminfo, or None when procfs cannot be read."""
    text = read_text(paths.proc("meminfo"))
    return parse_meminfo(text) if text is not None else None


def parse_thp_mode(text: str) -> str | None:
    """`always [madvise] never` → "madvise": the kernel brackets the active mode."""
    m = re.search(r"\[(\w+)\]", text)
    return m.group(1) if m else None


def read_thp_mode(paths: Paths) -> str | None:
    """The active transparent huge page mode, or None when the kernel has no THP (or sysfs is absent)."""
    text = read_text(paths.sys("kernel", "mm", "transparent_hugepage", "enabled"))
    return parse_thp_mode(text) if text else None
