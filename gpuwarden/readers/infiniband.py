"""InfiniBand / RoCE ports from /sys/class/infiniband/<device>/ports/<n>/.

Layout and units per the kernel's Documentation/ABI/stable/sysfs-class-infiniband: `state` reads
"4: ACTIVE", `phys_state` "5: LinkUp", `rate` "400 Gb/sec (4X NDR)", `link_layer` "InfiniBand" or
"Ethernet" (RoCE). `counters/port_{xmit,rcv}_data` count octets divided by 4 (one unit per lane-word), so
bytes are the value times 4. `hw_counters/` holds the driver's own counters (mlx5: out_of_buffer,
rnr_nak_retry_err, ...); its names differ per driver, so they are exported under a `stat` label.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from gpuwarden.paths import Paths, read_text

# PortCounters (IBA 1.3, 16.1.3.5) holds the data and packet counters in 32 bits; only
# PortCountersExtended has 64. A device without the extended set makes these wrap in minutes at 400 Gb/s.
WRAPPING_32BIT = frozenset({"port_xmit_data", "port_rcv_data", "port_xmit_packets", "port_rcv_packets"})
# hw_counters/lifespan is the counters' refresh period in milliseconds, not a counter.
NOT_COUNTERS = frozenset({"lifespan"})
DATA_COUNTERS = {
    "port_rcv_data": ("receive_bytes", 4),
    "port_xmit_data": ("transmit_bytes", 4),
    "port_rcv_packets": ("receive_packets", 1),
    "port_xmit_packets": ("transmit_packets", 1),
}


@dataclass(frozen=True)
class IBPort:
    device: str
    port: str
    state: str  # ACTIVE, DOWN, INIT, ARMED; "unknown" when unreadable
    phys_state: str  # LinkUp, Polling, Disabled, ...
    link_layer: str  # InfiniBand or Ethernet
    rate_bps: float | None
    counters: dict[str, int] = field(default_factory=dict)
    hw_counters: dict[str, int] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        # ACTIVE is only reachable over a trained link, so an unreadable phys_state does not veto it.
        return self.state == "ACTIVE" and self.phys_state in ("LinkUp", "unknown")


def parse_state(text: str | None) -> str:
    """ "4: ACTIVE" → "ACTIVE"; "5: LinkUp" → "LinkUp"; missing → "unknown"."""
    if not text or not text.strip():
        return "unknown"
    return text.split(":", 1)[-1].strip()


def parse_rate(text: str | None) -> float | None:
    """ "400 Gb/sec (4X NDR)" → 4e11 bits/s; "2.5 Gb/sec (1X SDR)" → 2.5e9; unreadable → None."""
    if not text:
        return None
    m = re.match(r"\s*([\d.]+)\s*Gb/sec", text)
    return float(m.group(1)) * 1e9 if m else None


def _read_counters(directory: str) -> dict[str, int]:
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    out: dict[str, int] = {}
    for name in names:
        if name in NOT_COUNTERS:
            continue
        text = read_text(os.path.join(directory, name))
        if text is None:
            continue
        try:
            out[name] = int(text.strip())
        except ValueError:
            continue  # some drivers expose "N/A" for counters the firmware does not implement
    return out


def read_ports(paths: Paths) -> list[IBPort]:
    """Every port of every device; an empty list when the host has no RDMA devices."""
    root = paths.sys("class", "infiniband")
    try:
        devices = sorted(os.listdir(root))
    except OSError:
        return []
    ports = []
    for device in devices:
        try:
            port_names = sorted(os.listdir(os.path.join(root, device, "ports")), key=lambda p: (len(p), p))
        except OSError:
            continue
        for port in port_names:
            base = os.path.join(root, device, "ports", port)
            ports.append(
                IBPort(
                    device=device,
                    port=port,
                    state=parse_state(read_text(os.path.join(base, "state"))),
                    phys_state=parse_state(read_text(os.path.join(base, "phys_state"))),
                    link_layer=(read_text(os.path.join(base, "link_layer")) or "unknown").strip(),
                    rate_bps=parse_rate(read_text(os.path.join(base, "rate"))),
                    counters=_read_counters(os.path.join(base, "counters")),
                    hw_counters=_read_counters(os.path.join(base, "hw_counters")),
                )
            )
    return ports
