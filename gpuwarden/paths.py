"""Every /proc, /sys, /dev and root-filesystem read goes through these roots.

Tests point the roots at fixture trees (node_exporter's --path.procfs / --path.sysfs); in a container the
host's trees are mounted elsewhere. Nothing else in the package spells "/proc" or "/sys".
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Paths:
    procfs: str = "/proc"
    sysfs: str = "/sys"
    devfs: str = "/dev"
    rootfs: str = "/"

    def proc(self, *parts: str) -> str:
        return os.path.join(self.procfs, *parts)

    def sys(self, *parts: str) -> str:
        return os.path.join(self.sysfs, *parts)

    def dev(self, *parts: str) -> str:
        return os.path.join(self.devfs, *parts)

    def root(self, path: str) -> str:
        """Map an absolute host path (a disk mount, a model file) under the root filesystem."""
        return os.path.join(self.rootfs, path.lstrip("/"))


def read_text(path: str) -> str | None:
    """The file's text, or None when it does not exist or cannot be read (absent data, not an error)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None
