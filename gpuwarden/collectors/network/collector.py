"""The `network` collector: interfaces, InfiniBand/RoCE ports and peer round-trip times.

Raw kernel counters go through a `CounterTracker`, so exported counters never decrease even when a 32-bit
IB counter wraps or an interface is re-created, and utilization and error ratios come from the increase
over the last interval (they appear from the second cycle on). IB data counters are read from the widest
source the port has (64-bit where it has one; readers/infiniband.py), and only a 32-bit one wraps. A
malformed line of /proc/net/dev drops that line, logged once, never the other interfaces.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait

from gpuwarden.agent.registry import CollectorContext, Item, register
from gpuwarden.catalog import Families
from gpuwarden.collectors.network.catalog import CATALOG
from gpuwarden.collectors.network.counters import WIDTH_32, CounterTracker, error_ratio, utilization
from gpuwarden.collectors.network.peers import PeerStats, ProbeOutcome, probe_tcp
from gpuwarden.collectors.network.settings import NetworkSettings
from gpuwarden.health import Action, HealthResult, State
from gpuwarden.paths import read_text
from gpuwarden.readers.infiniband import DATA_FILES, IBPort, data_counters, read_ports
from gpuwarden.readers.netdev import MalformedLine, parse_proc_net_dev, read_link

NETDEV_FIELDS = (
    ("rx_bytes", "receive_bytes"),
    ("tx_bytes", "transmit_bytes"),
    ("rx_packets", "receive_packets"),
    ("tx_packets", "transmit_packets"),
    ("rx_errors", "receive_errors"),
    ("tx_errors", "transmit_errors"),
    ("rx_drops", "receive_drops"),
    ("tx_drops", "transmit_drops"),
)


@register("network", NetworkSettings)
class NetworkCollector:
    def __init__(
        self, settings: NetworkSettings, ctx: CollectorContext, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.paths = ctx.paths
        self.log = ctx.log
        self.malformed: set[str] = set()  # interfaces (or "") whose /proc/net/dev line is malformed now
        self.wide: set[tuple[str, ...]] = set()  # IB data series seen past 32 bits: never a wrap
        self.exclude = re.compile(settings.interface_exclude)
        self.clock = clock
        self.tracker = CounterTracker()
        self.last_time: float | None = None
        self.peer_stats = {p.name: PeerStats(bounds=settings.rtt_buckets) for p in settings.peers}
        # One thread per peer (at most 64) so all probes of a cycle run side by side within its budget;
        # threads start lazily on the first submit, so the constructor stays free of slow work.
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(settings.peers)), thread_name_prefix="peer")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def collect(self) -> Iterator[Item]:
        fams = Families(CATALOG)
        now = self.clock()
        seconds = None if self.last_time is None else now - self.last_time
        self.last_time = now
        yield from self._interfaces(fams, seconds)
        yield from self._infiniband(fams, seconds)
        yield from self._peers(fams)
        self.tracker.end_cycle()
        yield from fams

    def _interfaces(self, fams: Families, seconds: float | None) -> Iterator[HealthResult]:
        text = read_text(self.paths.proc("net", "dev"))
        if text is None:
            yield HealthResult("network.interfaces", State.UNKNOWN, "cannot read /proc/net/dev")
            return
        netdev = parse_proc_net_dev(text)
        stats = netdev.interfaces
        fams.add("gpuwarden_network_malformed_lines", len(netdev.malformed))
        self._log_malformed(netdev.malformed)
        unreadable = {m.interface for m in netdev.malformed}
        noisy, down = [], []
        for iface, st in sorted(stats.items()):
            if self.exclude.search(iface):
                continue
            for attr, name in NETDEV_FIELDS:
                total = self.tracker.update(("if", iface, attr), getattr(st, attr))
                fams.add(f"gpuwarden_network_{name}_total", total, interface=iface)
            link = read_link(self.paths, iface)
            fams.add("gpuwarden_network_up", link.up, interface=iface)
            fams.add("gpuwarden_network_info", 1, interface=iface, operstate=link.operstate)
            if link.mtu is not None:
                fams.add("gpuwarden_network_mtu_bytes", link.mtu, interface=iface)
            if link.speed_bps is not None:
                fams.add("gpuwarden_network_speed_bytes_per_second", link.speed_bps / 8, interface=iface)
            for direction, attr in (("receive", "rx_bytes"), ("transmit", "tx_bytes")):
                ratio = utilization(self.tracker.delta(("if", iface, attr)), seconds, link.speed_bps)
                if ratio is not None:
                    fams.add(f"gpuwarden_network_{direction}_utilization_ratio", ratio, interface=iface)
            errors = [self.tracker.delta(("if", iface, a)) for a in ("rx_errors", "tx_errors")]
            packets = [self.tracker.delta(("if", iface, a)) for a in ("rx_packets", "tx_packets")]
            ratio = error_ratio(_sum(errors), _sum(packets))
            if ratio is not None:
                fams.add("gpuwarden_network_error_ratio", ratio, interface=iface)
                if ratio > self.settings.error_ratio_max:
                    noisy.append(f"{iface} {ratio:.2%} errors")
            if iface in self.settings.expected_interfaces and not link.up:
                down.append(f"{iface} is {link.operstate}")
        expected = [i for i in self.settings.expected_interfaces if i not in stats]
        down += [f"{i} is missing" for i in expected if i not in unreadable]
        n = len(netdev.malformed)
        skipped = f"; {n} malformed line(s) of /proc/net/dev skipped" if n else ""
        if down:
            yield HealthResult("network.interfaces", State.UNHEALTHY, "; ".join(down), Action.CHECK_NETWORK)
        elif noisy:
            yield HealthResult("network.interfaces", State.DEGRADED, "; ".join(noisy), Action.CHECK_NETWORK)
        elif expected:  # an expected interface whose line is malformed: its state cannot be told
            reason = ", ".join(f"{i}'s line in /proc/net/dev is malformed" for i in expected)
            yield HealthResult("network.interfaces", State.UNKNOWN, reason)
        else:
            reason = f"{len(stats)} interface(s) read{skipped}"
            yield HealthResult("network.interfaces", State.HEALTHY, reason)

    def _log_malformed(self, malformed: tuple[MalformedLine, ...]) -> None:
        """One warning when an interface's line turns malformed, not one per collection."""
        now = {m.interface for m in malformed}
        for m in malformed:
            if m.interface not in self.malformed:
                self.log.warning("skipping /proc/net/dev %s (until it parses again)", m)
        self.malformed = now

    def _infiniband(self, fams: Families, seconds: float | None) -> Iterator[HealthResult]:
        ports = read_ports(self.paths)
        for p in ports:
            self._port(fams, p, seconds)
        expected = self.settings.infiniband_expected_active_ports
        if not ports and not expected:
            return  # no RDMA fabric on this node and none expected: nothing to say
        up = [p for p in ports if p.up]
        not_up = [f"{p.device}/{p.port} {p.state}/{p.phys_state}" for p in ports if not p.up]
        if len(up) < expected:
            reason = f"{len(up)} of {expected} expected port(s) active" + (
                f"; {', '.join(not_up)}" if not_up else ""
            )
            yield HealthResult("network.infiniband", State.UNHEALTHY, reason, Action.CHECK_NETWORK)
        elif not_up:
            reason = f"{len(up)} port(s) active; not active: {', '.join(not_up)}"
            yield HealthResult("network.infiniband", State.DEGRADED, reason, Action.CHECK_NETWORK)
        else:
            yield HealthResult("network.infiniband", State.HEALTHY, f"{len(up)} port(s) active")

    def _port(self, fams: Families, p: IBPort, seconds: float | None) -> None:
        labels = {"device": p.device, "port": p.port}
        fams.add("gpuwarden_network_infiniband_port_up", p.up, **labels)
        fams.add(
            "gpuwarden_network_infiniband_port_info",
            1,
            state=p.state,
            phys_state=p.phys_state,
            link_layer=p.link_layer,
            **labels,
        )
        if p.rate_bps is not None:
            fams.add("gpuwarden_network_infiniband_rate_bytes_per_second", p.rate_bps / 8, **labels)
        for name, d in data_counters(p).items():
            key = ("ib", p.device, p.port, d.source)  # a new source starts its own running total
            if d.bits == 64 or d.raw >= WIDTH_32:
                self.wide.add(key)
            total = self.tracker.update(key, d.raw, None if key in self.wide else WIDTH_32)
            fams.add(f"gpuwarden_network_infiniband_{name}_total", total * d.scale, **labels)
            direction, unit = name.split("_")
            # A 32-bit PortCounters counter stops at all ones (IBA 16.1.3.5) on some devices: at that
            # value the increase says nothing, so utilization is left out rather than reported as 0.
            saturated = key not in self.wide and d.raw == WIDTH_32 - 1
            if unit == "bytes" and not saturated:
                delta = self.tracker.delta(key)
                ratio = utilization(None if delta is None else delta * d.scale, seconds, p.rate_bps)
                if ratio is not None:
                    fams.add(f"gpuwarden_network_infiniband_{direction}_utilization_ratio", ratio, **labels)
        others = [(c, raw) for c, raw in p.counters.items() if c not in DATA_FILES]
        others += [(c, raw) for c, raw in p.counters_ext.items() if not c.endswith("_64")]
        for counter, raw in sorted(others):
            total = self.tracker.update(("ib", p.device, p.port, counter), raw)
            fams.add("gpuwarden_network_infiniband_port_stat_total", total, stat=counter, **labels)
        for counter, raw in sorted(p.hw_counters.items()):
            total = self.tracker.update(("ibhw", p.device, p.port, counter), raw)
            fams.add("gpuwarden_network_infiniband_hw_stat_total", total, stat=counter, **labels)

    def _peers(self, fams: Families) -> Iterator[HealthResult]:
        peers = self.settings.peers
        if not peers:
            return
        timeout, probes = self.settings.probe_timeout, self.settings.probes_per_cycle
        futures = {p.name: self.pool.submit(probe_tcp, p.host, p.port, timeout, probes) for p in peers}
        # Connects are bounded by probe_timeout, name resolution is not (the resolver retries on its own):
        # wait halfway between the probes' worst case and the collector's deadline, then count a peer
        # still resolving as a timeout rather than let it cost the whole cycle.
        wait(futures.values(), timeout=(timeout * probes + self.settings.timeout) / 2)
        for peer in peers:
            stats = self.peer_stats[peer.name]
            future = futures[peer.name]
            outcomes = future.result() if future.done() else [ProbeOutcome("timeout", None)]
            stats.record(outcomes)
            fams.add_histogram(
                "gpuwarden_network_peer_rtt_seconds",
                stats.cumulative_buckets(),
                stats.total_seconds,
                peer=peer.name,
            )
            for result, count in stats.results.items():
                fams.add("gpuwarden_network_peer_probes_total", count, peer=peer.name, result=result)
            fams.add("gpuwarden_network_peer_up", stats.last_ok, peer=peer.name)
            host = f"[{peer.host}]" if ":" in peer.host else peer.host
            yield peer_health(peer.name, f"{host}:{peer.port}", outcomes)


def _sum(values: list[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def peer_health(name: str, address: str, outcomes: list[ProbeOutcome]) -> HealthResult:
    """One result per peer (`network.peer.<name>`, label `peer`): DEGRADED when no probe got through."""
    labels = {"peer": name}
    if any(o.result == "ok" for o in outcomes):
        return HealthResult(f"network.peer.{name}", State.HEALTHY, f"{address} reachable", labels=labels)
    results = ", ".join(sorted({o.result for o in outcomes}))
    return HealthResult(
        f"network.peer.{name}",
        State.DEGRADED,
        f"{address} unreachable this cycle: {results}",
        Action.CHECK_NETWORK,
        labels=labels,
    )
