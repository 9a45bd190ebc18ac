"""Interfaces: counters from /proc/net/dev, link state and speed from /sys/class/net/<iface>/.

The /proc/net/dev columns follow the kernel's `dev_seq_printf_stats()` (net/core/net-procfs.c): eight
receive fields, then eight transmit fields. sysfs attributes are documented in
Documentation/ABI/testing/sysfs-class-net; `speed` is in Mbit/s and reads EINVAL (or -1) when the link is
down or virtual, which we treat as "unknown", never as zero bandwidth.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuwarden.paths import Paths, read_text

RECEIVE_FIELDS = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")
TRANSMIT_FIELDS = ("bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed")


class NetDevFormatError(ValueError):
    """/proc/net/dev does not look like the kernel's format."""


@dataclass(frozen=True)
class NetDevStats:
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_drops: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_drops: int


@dataclass(frozen=True)
class LinkInfo:
    operstate: str  # "up", "down", "unknown", ... (RFC 2863 states, lower case as the kernel prints them)
    speed_bps: float | None  # bits per second; None when the kernel cannot tell
    carrier: bool | None
    mtu: int | None

    @property
    def up(self) -> bool:
        # Loopback and some virtual drivers never set operstate and stay "unknown" while passing traffic;
        # with carrier present they are up (the same reading `ip link` gives as state UNKNOWN, LOWER_UP).
        return self.operstate == "up" or (self.operstate == "unknown" and self.carrier is True)


def parse_proc_net_dev(text: str) -> dict[str, NetDevStats]:
    """/proc/net/dev → {interface: stats}. Raises NetDevFormatError on a malformed line."""
    out: dict[str, NetDevStats] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if lineno <= 2 or not line.strip():
            continue  # two header lines
        name, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or len(fields) != len(RECEIVE_FIELDS) + len(TRANSMIT_FIELDS):
            raise NetDevFormatError(f"line {lineno}: expected 'iface: 16 numbers', got {line.strip()!r}")
        try:
            v = [int(f) for f in fields]
        except ValueError:
            raise NetDevFormatError(f"line {lineno}: non-numeric counter in {line.strip()!r}") from None
        out[name.strip()] = NetDevStats(
            rx_bytes=v[0], rx_packets=v[1], rx_errors=v[2], rx_drops=v[3],
            tx_bytes=v[8], tx_packets=v[9], tx_errors=v[10], tx_drops=v[11],
        )  # fmt: skip
    return out


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def read_link(paths: Paths, iface: str) -> LinkInfo:
    def attr(name: str) -> str | None:
        return read_text(paths.sys("class", "net", iface, name))

    operstate = (attr("operstate") or "unknown").strip() or "unknown"
    speed = _int(attr("speed"))
    carrier = _int(attr("carrier"))
    return LinkInfo(
        operstate=operstate,
        # The kernel reports -1 (SPEED_UNKNOWN) or refuses with EINVAL; both mean "no figure".
        speed_bps=speed * 1_000_000.0 if speed is not None and speed > 0 else None,
        carrier=None if carrier is None else carrier == 1,
        mtu=_int(attr("mtu")),
    )
