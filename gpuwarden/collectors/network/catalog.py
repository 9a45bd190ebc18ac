"""Every series of the `network` collector."""

from __future__ import annotations

from gpuwarden.catalog import MetricSpec

IF = ("interface",)
PORT = ("device", "port")


def _if_counter(name: str, what: str, unit: str = "") -> MetricSpec:
    return MetricSpec(f"gpuwarden_network_{name}_total", "counter", f"{what} (/proc/net/dev).", IF, unit)


CATALOG = (
    _if_counter("receive_bytes", "Bytes received", "bytes"),
    _if_counter("transmit_bytes", "Bytes transmitted", "bytes"),
    _if_counter("receive_packets", "Packets received"),
    _if_counter("transmit_packets", "Packets transmitted"),
    _if_counter("receive_errors", "Receive errors"),
    _if_counter("transmit_errors", "Transmit errors"),
    _if_counter("receive_drops", "Received packets dropped"),
    _if_counter("transmit_drops", "Transmitted packets dropped"),
    MetricSpec(
        "gpuwarden_network_malformed_lines",
        "gauge",
        "Lines of /proc/net/dev skipped in the last read because they lack the kernel's format "
        "(the other interfaces are still read).",
    ),
    MetricSpec(
        "gpuwarden_network_up",
        "gauge",
        "1 when the interface is up (operstate up, or unknown with carrier as loopback reports).",
        IF,
    ),
    MetricSpec(
        "gpuwarden_network_info",
        "gauge",
        "Interface operstate as a label; always 1.",
        ("interface", "operstate"),
    ),
    MetricSpec("gpuwarden_network_mtu_bytes", "gauge", "Interface MTU.", IF, "bytes"),
    MetricSpec(
        "gpuwarden_network_speed_bytes_per_second",
        "gauge",
        "Negotiated link speed; absent when the kernel cannot tell (virtual or down links).",
        IF,
        "bytes",
    ),
    MetricSpec(
        "gpuwarden_network_receive_utilization_ratio",
        "gauge",
        "Received bytes over the last interval as a share of link speed.",
        IF,
        "ratio",
    ),
    MetricSpec(
        "gpuwarden_network_transmit_utilization_ratio",
        "gauge",
        "Transmitted bytes over the last interval as a share of link speed.",
        IF,
        "ratio",
    ),
    MetricSpec(
        "gpuwarden_network_error_ratio",
        "gauge",
        "Errored packets (receive and transmit) over all packets in the last interval.",
        IF,
        "ratio",
    ),
    MetricSpec(
        "gpuwarden_network_infiniband_port_up",
        "gauge",
        "1 when the port is ACTIVE and its link LinkUp.",
        PORT,
    ),
    MetricSpec(
        "gpuwarden_network_infiniband_port_info",
        "gauge",
        "Port state, physical state and link layer (InfiniBand or Ethernet for RoCE) as labels; always 1.",
        ("device", "port", "state", "phys_state", "link_layer"),
    ),
    MetricSpec(
        "gpuwarden_network_infiniband_rate_bytes_per_second", "gauge", "Port signalling rate.", PORT, "bytes"
    ),
    MetricSpec(
        "gpuwarden_network_infiniband_receive_bytes_total",
        "counter",
        "Bytes received by the port (64-bit counters where the port has them).",
        PORT,
        "bytes",
    ),
    MetricSpec(
        "gpuwarden_network_infiniband_transmit_bytes_total",
        "counter",
        "Bytes transmitted by the port (64-bit counters where the port has them).",
        PORT,
        "bytes",
    ),
    MetricSpec("gpuwarden_network_infiniband_receive_packets_total", "counter", "Packets received.", PORT),
    MetricSpec(
        "gpuwarden_network_infiniband_transmit_packets_total", "counter", "Packets transmitted.", PORT
    ),
    MetricSpec(
        "gpuwarden_network_infiniband_port_stat_total",
        "counter",
        "Other port counters (errors, discards, link_downed, unicast/multicast packets, ...) from "
        "ports/<n>/counters and counters_ext.",
        (*PORT, "stat"),
    ),
    MetricSpec(
        "gpuwarden_network_infiniband_hw_stat_total",
        "counter",
        "Driver counters from ports/<n>/hw_counters (mlx5: out_of_buffer, rnr_nak_retry_err, ...).",
        (*PORT, "stat"),
    ),
    MetricSpec(
        "gpuwarden_network_infiniband_receive_utilization_ratio",
        "gauge",
        "Received bytes over the last interval as a share of the port rate.",
        PORT,
        "ratio",
    ),
    MetricSpec(
        "gpuwarden_network_infiniband_transmit_utilization_ratio",
        "gauge",
        "Transmitted bytes over the last interval as a share of the port rate.",
        PORT,
        "ratio",
    ),
    MetricSpec(
        "gpuwarden_network_peer_rtt_seconds",
        "histogram",
        "TCP connect round-trip time to a configured peer (successful probes only).",
        ("peer",),
        "seconds",
    ),
    MetricSpec(
        "gpuwarden_network_peer_probes_total",
        "counter",
        "TCP connect probes by result (ok, refused, timeout, unresolved, error).",
        ("peer", "result"),
    ),
    MetricSpec(
        "gpuwarden_network_peer_up", "gauge", "1 when a probe to the peer succeeded this cycle.", ("peer",)
    ),
)
