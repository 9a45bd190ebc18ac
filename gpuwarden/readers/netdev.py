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


@dataclass(frozen=True)
class MalformedLine:
    lineno: int
    interface: str  # the name before the last ':', "" when the line has none
    reason: str

    def __str__(self) -> str:
        return f"line {self.lineno} ({self.interface or 'no interface name'}): {self.reason}"


@dataclass(frozen=True)
class NetDev:
    interfaces: dict[str, NetDevStats]
    malformed: tuple[MalformedLine, ...]  # lines dropped; every other interface is still read


def parse_proc_net_dev(text: str) -> NetDev:
    """/proc/net/dev → its interfaces, and the lines that do not have the kernel's format.

    One bad line costs that line only. The name is everything before the last ':' (old kernels list
    alias interfaces such as `ibr10:30:`, node_exporter#902), and the first number may touch the colon
    (`lo:181005683161`, node_exporter#73).
    """
    out: dict[str, NetDevStats] = {}
    malformed: list[MalformedLine] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or "|" in line:
            continue  # the two header lines are the only ones with '|'
        name, sep, rest = line.rpartition(":")
        name, fields = name.strip(), rest.split()
        want = len(RECEIVE_FIELDS) + len(TRANSMIT_FIELDS)
        if not sep or not name:
            malformed.append(MalformedLine(lineno, "", f"no 'interface:' prefix in {line.strip()[:80]!r}"))
            continue
        if len(fields) != want:
            malformed.append(MalformedLine(lineno, name, f"{len(fields)} fields, the kernel prints {want}"))
            continue
        try:
            v = [int(f) for f in fields]
        except ValueError:
            malformed.append(MalformedLine(lineno, name, f"non-numeric counter in {rest.strip()[:80]!r}"))
            continue
        out[name] = NetDevStats(
            rx_bytes=v[0], rx_packets=v[1], rx_errors=v[2], rx_drops=v[3],
            tx_bytes=v[8], tx_packets=v[9], tx_errors=v[10], tx_drops=v[11],
        )  # fmt: skip
    return NetDev(out, tuple(malformed))


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
