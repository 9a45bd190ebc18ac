"""Peer latency: TCP connect round-trip time to configured peers, kept as a cumulative histogram.

A TCP connect costs one SYN / SYN-ACK exchange, so its duration is a network round trip plus the peer's
accept queue: the figure `blackbox_exporter`'s tcp prober reports as `probe_duration_seconds`. Names are
resolved before the clock starts, so a slow resolver does not read as a slow network. An unreachable peer is
a counted result, never an exception.
"""

from __future__ import annotations

import bisect
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.utils import floatToGoString

RESULTS = ("ok", "refused", "timeout", "unresolved", "error")


@dataclass(frozen=True)
class ProbeOutcome:
    result: str  # one of RESULTS
    seconds: float | None  # set when result == "ok"


def probe_tcp(host: str, port: int, timeout: float, count: int = 1) -> list[ProbeOutcome]:
    """`count` TCP connects to host:port, each closed at once; the name is resolved once. Never raises."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return [ProbeOutcome("unresolved", None)] * count
    return [_connect(infos[0], timeout) for _ in range(count)]


def _connect(info: tuple[Any, ...], timeout: float) -> ProbeOutcome:
    family, kind, proto, _, address = info
    sock = socket.socket(family, kind, proto)
    sock.settimeout(timeout)
    try:
        start = time.perf_counter()
        sock.connect(address)
        return ProbeOutcome("ok", time.perf_counter() - start)
    except ConnectionRefusedError:
        return ProbeOutcome("refused", None)
    except TimeoutError:
        return ProbeOutcome("timeout", None)
    except OSError:  # unreachable network or host, reset: the same operator action as a refusal
        return ProbeOutcome("error", None)
    finally:
        sock.close()


@dataclass
class PeerStats:
    """Cumulative histogram of successful probes plus a count per result, for one peer."""

    bounds: Sequence[float]
    bucket_counts: list[int] = field(default_factory=list)
    total_seconds: float = 0.0
    results: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))
    last_ok: bool = False

    def __post_init__(self) -> None:
        self.bucket_counts = [0] * (len(self.bounds) + 1)  # the last slot is +Inf

    def record(self, outcomes: Sequence[ProbeOutcome]) -> None:
        for outcome in outcomes:
            self.results[outcome.result] += 1
            if outcome.seconds is not None:
                # Buckets are "less than or equal": bisect_left puts a value equal to a bound in that bucket.
                self.bucket_counts[bisect.bisect_left(self.bounds, outcome.seconds)] += 1
                self.total_seconds += outcome.seconds
        self.last_ok = any(o.result == "ok" for o in outcomes)

    def cumulative_buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip([*self.bounds, float("inf")], self.bucket_counts, strict=True):
            running += count
            out.append((floatToGoString(bound), float(running)))
        return out
