"""One cycle of XID handling: drain both sources, de-duplicate, export counters, judge each GPU.

Runs outside the NVML thread and needs no NVML answer: when the driver hangs, the kernel log still shows
the XID that explains why (79, 119 and 120 often come with a hang).
"""

from __future__ import annotations

import time
from typing import Protocol

from gpuwarden.catalog import Families
from gpuwarden.collectors.gpu.backend import XidEvent
from gpuwarden.collectors.gpu.checks import gpu_labels
from gpuwarden.collectors.gpu.events import XidWatcher
from gpuwarden.collectors.gpu.kmsg import KmsgReader, parse_line, pci_key
from gpuwarden.collectors.gpu.xid import XidLedger
from gpuwarden.health import HealthResult


class XidSources(Protocol):
    """What this reads of the GPU collector, named here so the two modules do not import each other."""

    watcher: XidWatcher | None
    kmsg: KmsgReader | None
    identity: dict[int, tuple[str, str]]  # index → (uuid, pci bus id)
    xids: XidLedger


def collect_xids(c: XidSources, fams: Families, results: list[HealthResult], now: float) -> None:
    events: list[tuple[XidEvent, str, str, str]] = []  # (event, gpu, GPU instance, message)
    if c.watcher is not None:
        fams.add("gpuwarden_gpu_xid_source_up", c.watcher.running, source="nvml")
        events += [(e, str(e.gpu), "", "") for e in c.watcher.drain()]
    if c.kmsg is not None:
        by_pci: dict[tuple[int, int, int] | None, int] | None = None
        mono = time.monotonic()
        for since_boot, message in c.kmsg.poll():
            line = parse_line(message)
            if line is None:
                continue
            if by_pci is None:  # built only when the log has an XID, not on every cycle (most have none)
                by_pci = {pci_key(pci): i for i, (_, pci) in c.identity.items()}
            index = by_pci.get(line.pci) if line.pci else None
            gpu = str(index) if index is not None else bus_label(line.pci)
            source = "kmsg" if line.form == "xid" else "kmsg-text"
            # When it happened, not when we read it: the first read after a start sees XIDs since boot.
            when = min(now, now - (mono - since_boot)) if since_boot is not None else now
            event = XidEvent(index if index is not None else -1, line.xid, source, when)
            events.append((event, gpu, line.gpu_instance, line.message))
        fams.add("gpuwarden_gpu_xid_source_up", c.kmsg.error is None, source="kmsg")
    for event, gpu, instance, message in events:
        c.xids.add(event, gpu, instance, message)
    for (gpu, xid, instance), count in sorted(c.xids.counts.items()):
        uuid = c.identity[int(gpu)][0] if gpu.isdigit() and int(gpu) in c.identity else ""
        labels = {"gpu": gpu, "uuid": uuid, "xid": str(xid), "gpu_instance": instance}
        fams.add("gpuwarden_gpu_xid_errors_total", count, **labels)
        fams.add(
            "gpuwarden_gpu_xid_last_seen_timestamp_seconds",
            c.xids.last_seen[(gpu, xid, instance)],
            **labels,
        )
    known = {gpu for gpu, _, _ in c.xids.counts}
    for gpu in sorted({str(i) for i in c.identity} | known):
        verdict = c.xids.verdict(gpu, now)
        uuid = c.identity[int(gpu)][0] if gpu.isdigit() and int(gpu) in c.identity else ""
        results.append(
            HealthResult(
                f"gpu.{gpu}.xid", verdict.state, verdict.reason, verdict.action, labels=gpu_labels(gpu, uuid)
            )
        )


def bus_label(key: tuple[int, int, int] | None) -> str:
    """The GPU label for an XID whose PCI id NVML does not know (the GPU left before we saw it)."""
    return f"{key[0]:04x}:{key[1]:02x}:{key[2]:02x}" if key else "unknown"
