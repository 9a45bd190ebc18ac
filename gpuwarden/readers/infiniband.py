"""InfiniBand / RoCE / EFA ports from /sys/class/infiniband/<device>/ports/<n>/.

Layout and units per the kernel's Documentation/ABI/stable/sysfs-class-infiniband: `state` reads
"4: ACTIVE", `phys_state` "5: LinkUp", `rate` "400 Gb/sec (4X NDR)", `link_layer` "InfiniBand" or
"Ethernet" (RoCE). `hw_counters/` holds the driver's own counters (mlx5: out_of_buffer,
rnr_nak_retry_err, ...; EFA: rx_bytes, tx_pkts, ...); its names differ per driver, so they are exported
under a `stat` label.

Data and packet counters come from the widest source the port has (`data_counters`):

- `counters_ext/port_{rcv,xmit}_{data,packets}_64`: 64-bit, the separate directory of kernels before 4.5
  and Mellanox OFED (node_exporter's collector/fixtures/sys.ttar, mlx4_0).
- `counters/port_{rcv,xmit}_{data,packets}`: the kernel fills this directory from PortCountersExtended
  (64-bit) when the device's ClassPortInfo advertises it, and then also lists `unicast_*_packets` and
  `multicast_*_packets` (drivers/infiniband/core/sysfs.c, `pma_attrs_ext`); without those names the
  counters may be the 32-bit PortCounters, and only then does a decrease count as a wrap. A value past
  32 bits proves the counter wider (the `noietf` table of mlx4 and hfi1 adds no names), so it never wraps.
- `hw_counters/{rx,tx}_{bytes,pkts}`: 64-bit, for devices without PMA counters (AWS EFA).

`port_{rcv,xmit}_data` count octets divided by 4 (one unit per lane-word), so bytes are the value times 4.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from gpuwarden.paths import Paths, read_text

# hw_counters/lifespan is the counters' refresh period in milliseconds, not a counter.
NOT_COUNTERS = frozenset({"lifespan"})
# series → candidate (directory, file, bytes per unit), widest first.
DATA_SOURCES: dict[str, tuple[tuple[str, str, int], ...]] = {
    "receive_bytes": (
        ("counters_ext", "port_rcv_data_64", 4),
        ("counters", "port_rcv_data", 4),
        ("hw_counters", "rx_bytes", 1),
    ),
    "transmit_bytes": (
        ("counters_ext", "port_xmit_data_64", 4),
        ("counters", "port_xmit_data", 4),
        ("hw_counters", "tx_bytes", 1),
    ),
    "receive_packets": (
        ("counters_ext", "port_rcv_packets_64", 1),
        ("counters", "port_rcv_packets", 1),
        ("hw_counters", "rx_pkts", 1),
    ),
    "transmit_packets": (
        ("counters_ext", "port_xmit_packets_64", 1),
        ("counters", "port_xmit_packets", 1),
        ("hw_counters", "tx_pkts", 1),
    ),
}
# counters/ files that are data counters: exported as the series above, never as a port_stat.
DATA_FILES = frozenset({"port_rcv_data", "port_xmit_data", "port_rcv_packets", "port_xmit_packets"})
# Present in counters/ only when the kernel chose PortCountersExtended (64-bit) for the port.
EXTENDED_TABLE = frozenset(
    {"unicast_rcv_packets", "unicast_xmit_packets", "multicast_rcv_packets", "multicast_xmit_packets"}
)


@dataclass(frozen=True)
class DataCounter:
    raw: int
    scale: int  # bytes per unit for the byte series, 1 for packets
    bits: int  # 64, or 32 for counters/ without the extended table (a decrease there may be a wrap)
    source: str  # "counters_ext/port_rcv_data_64", shown in docs and used to key the running total


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
    counters_ext: dict[str, int] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        # ACTIVE is only reachable over a trained link, so an unreadable phys_state does not veto it.
        return self.state == "ACTIVE" and self.phys_state in ("LinkUp", "unknown")


def data_counters(port: IBPort) -> dict[str, DataCounter]:
    """receive/transmit bytes/packets from the widest source the port has (see the module's docstring)."""
    dirs = {"counters_ext": port.counters_ext, "counters": port.counters, "hw_counters": port.hw_counters}
    extended = bool(EXTENDED_TABLE & port.counters.keys())
    out = {}
    for series, candidates in DATA_SOURCES.items():
        for directory, name, scale in candidates:
            raw = dirs[directory].get(name)
            if raw is None:
                continue
            bits = 32 if directory == "counters" and not extended and raw < 2**32 else 64
            out[series] = DataCounter(raw, scale, bits, f"{directory}/{name}")
            break
    return out


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
            continue  # "N/A (no PMA)" where the device has no performance management agent (i40iw)
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
                    counters_ext=_read_counters(os.path.join(base, "counters_ext")),
                )
            )
    return ports
