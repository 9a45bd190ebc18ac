"""XIDs from the kernel log (/dev/kmsg, through Paths): what NVML's event API misses.

NVML events cannot report XID 79, 119 and 120 (DCGM maintainers, NVIDIA/DCGM#162) and miss 62
(NVIDIA/DCGM#235); newer drivers log "fallen off the bus" without an XID number (gpud#1209), which is
XID 79 in effect. Line formats follow the NVIDIA driver's NVRM messages (open-gpu-kernel-modules
src/nvidia/src/kernel/gpu/rc/kernel_rc_notification.c), as matched by gpud's xid/kmsg.go:
  NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus.
  NVRM: Xid (PCI:0000:3b:00 GPU-I:05 GPU-CI:00): 31, pid=..., name=..., <message>   (MIG attribution)
  NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass

# The driver attributes an XID to a MIG GPU instance (and compute instance) inside the parenthesis.
XID_LINE = re.compile(
    r"NVRM: Xid \((?:PCI:)?([0-9a-fA-F:.]+)(?:\s+GPU-I:(\d+))?(?:\s+GPU-CI:(\d+))?\)[^:]*: (\d+),\s*(.*)"
)
OFF_BUS = re.compile(
    r"NVRM: .*?(?:PCI:)?([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}).*fallen off the bus"
)
BUS_ID = re.compile(r"([0-9a-fA-F]{1,8}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})")


def pci_key(bus_id: str) -> tuple[int, int, int] | None:
    """`00000000:3B:00.0` (NVML) and `0000:3b:00` (kernel log) → (domain, bus, device)."""
    m = BUS_ID.search(bus_id)
    return (int(m.group(1), 16), int(m.group(2), 16), int(m.group(3), 16)) if m else None


@dataclass(frozen=True)
class KmsgXid:
    """One kernel-log line about an XID."""

    pci: tuple[int, int, int] | None  # (domain, bus, device), None when the line names no GPU
    xid: int
    form: str  # "xid" for an `Xid (...): N,` line, "text" for the bare "fallen off the bus" line
    gpu_instance: str = ""  # the MIG GPU instance the driver attributes the XID to ("" without MIG)
    message: str = ""  # the text after the XID number (NVLink5 decode words, XID 154's new action)


def parse_line(message: str) -> KmsgXid | None:
    """A kernel log message → the XID it reports, or None when it is not about an XID.

    The driver often logs both forms for one XID 79, so they count as two sources of one error (see
    XidLedger.add)."""
    m = XID_LINE.search(message)
    if m:
        instance = str(int(m.group(2))) if m.group(2) else ""
        return KmsgXid(pci_key(m.group(1)), int(m.group(4)), "xid", instance, m.group(5).strip())
    m = OFF_BUS.search(message)
    if m:
        return KmsgXid(pci_key(m.group(1)), 79, "text")
    if "NVRM:" in message and "fallen off the bus" in message:
        return KmsgXid(None, 79, "text")
    return None


def record_message(record: str) -> tuple[float | None, str]:
    """One /dev/kmsg record `PRI,SEQ,TS,FLAGS;message` → (seconds since boot, message).

    TS is microseconds of the kernel's local_clock, which counts from boot like CLOCK_MONOTONIC
    (Documentation/ABI/testing/dev-kmsg)."""
    head, sep, message = record.partition(";")
    if not sep:
        return None, record
    fields = head.split(",")
    ts = int(fields[2]) / 1e6 if len(fields) > 2 and fields[2].isdigit() else None
    return ts, message


class KmsgReader:
    """Non-blocking reader: each `poll()` returns the messages logged since the last one.

    /dev/kmsg hands out one record per read() and starts at the oldest record still in the ring buffer,
    so the first poll also sees XIDs logged since boot. A regular file (a test fixture tree) works too."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._partial = b""
        self.error: str | None = None

    def poll(self) -> list[tuple[float | None, str]]:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as err:
                self.error = f"cannot open {self.path}: {err.strerror}"
                return []
            self.error = None
        chunks: list[bytes] = []
        for _ in range(100_000):  # a bound, not a limit reached in practice (the ring buffer is ~1 MiB)
            try:
                chunk = os.read(self._fd, 16384)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno == errno.EPIPE:  # records overwritten before we read them: skip ahead
                    continue
                self.error = f"reading {self.path}: {err.strerror}"
                break
            if not chunk:
                break
            chunks.append(chunk)  # a kmsg record ends in "\n"; continuation lines start with a space
        data = self._partial + b"".join(chunks)
        lines = data.split(b"\n")
        self._partial = lines.pop()
        # Continuation lines (" SUBSYSTEM=pci") start with a space and carry no header: not messages.
        return [
            record_message(line.decode("utf-8", errors="replace"))
            for line in lines
            if line[:1] != b" " and line
        ]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
