"""Pure parsers of the network collector: /proc/net/dev, IB state and rate strings, counter tracking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuwarden.collectors.network.counters import WIDTH_32, CounterTracker, error_ratio, utilization
from gpuwarden.readers.infiniband import parse_rate, parse_state
from gpuwarden.readers.netdev import parse_proc_net_dev

HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls "
    "carrier compressed\n"
)


def test_proc_net_dev_maps_receive_and_transmit_columns_by_position() -> None:
    text = HEADER + "  eth0: 100 2 3 4 0 0 0 9 500 6 7 8 0 0 0 0\n    lo:0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    stats = parse_proc_net_dev(text).interfaces
    assert set(stats) == {"eth0", "lo"}
    eth = stats["eth0"]
    assert (eth.rx_bytes, eth.rx_packets, eth.rx_errors, eth.rx_drops) == (100, 2, 3, 4)
    assert (eth.tx_bytes, eth.tx_packets, eth.tx_errors, eth.tx_drops) == (500, 6, 7, 8)


ZEROS = " 0" * 16


@pytest.mark.parametrize(
    ("line", "interface", "reason"),
    [
        ("  eth0: 1 2 3", "eth0", "3 fields, the kernel prints 16"),
        ("  eth0: 1 2 3 4 0 0 0 x 5 6 7 8 0 0 0 0", "eth0", "non-numeric counter"),
        ("garbage without a colon", "", "no 'interface:' prefix"),
        (":" + ZEROS, "", "no 'interface:' prefix"),
        ("  eth0:" + ZEROS + " 0", "eth0", "17 fields"),
    ],
)
def test_a_malformed_line_is_dropped_alone_and_named(line: str, interface: str, reason: str) -> None:
    netdev = parse_proc_net_dev(HEADER + "    lo:" + ZEROS + "\n" + line + "\n  eth1:" + ZEROS + "\n")
    assert set(netdev.interfaces) == {"lo", "eth1"}
    (bad,) = netdev.malformed
    assert (bad.lineno, bad.interface) == (4, interface) and reason in bad.reason
    assert str(bad).startswith("line 4 (")


def test_names_with_a_colon_and_numbers_touching_the_colon_are_interfaces() -> None:
    # Captured by node_exporter users: a CentOS 7 alias interface `ibr10:30` (node_exporter#902) and a
    # loopback whose byte count is wide enough to touch the colon (node_exporter#73).
    text = HEADER + (
        "ibr10:30:       0       0    0    0    0     0          0         0        0       0    0    0"
        "    0     0       0          0\n"
        "    lo:181005683161 224490607    0    0    0     0          0         0 181005683161 224490607    0"
        "    0    0     0       0          0\n"
    )
    netdev = parse_proc_net_dev(text)
    assert netdev.malformed == ()
    assert netdev.interfaces["lo"].rx_bytes == 181005683161
    assert netdev.interfaces["ibr10:30"].tx_packets == 0


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("4: ACTIVE\n", "ACTIVE"),
        ("1: DOWN", "DOWN"),
        ("5: LinkUp\n", "LinkUp"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_port_state_is_the_word_after_the_number(text: str | None, state: str) -> None:
    assert parse_state(text) == state


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("400 Gb/sec (4X NDR)\n", 400e9),
        ("2.5 Gb/sec (1X SDR)", 2.5e9),
        ("200 Gb/sec (2X HDR)", 200e9),
        ("garbage", None),
        (None, None),
    ],
)
def test_port_rate_is_read_in_bits_per_second(text: str | None, bps: float | None) -> None:
    assert parse_rate(text) == bps


def test_a_32_bit_counter_that_wraps_keeps_counting_up() -> None:
    t = CounterTracker()
    t.update(("k",), WIDTH_32 - 100, wraps_at=WIDTH_32)
    assert t.update(("k",), 50, wraps_at=WIDTH_32) == WIDTH_32 + 50
    assert t.delta(("k",)) == 150


def test_a_counter_that_resets_adds_its_new_value_not_a_negative_delta() -> None:
    t = CounterTracker()
    t.update(("k",), 10_000_000_000)
    assert t.update(("k",), 40) == 10_000_000_040
    assert t.delta(("k",)) == 40


def test_a_series_not_seen_in_a_cycle_is_forgotten() -> None:
    t = CounterTracker()
    t.update(("gone",), 5)
    t.end_cycle()
    t.end_cycle()
    assert t.delta(("gone",)) is None
    assert t.update(("gone",), 3) == 3  # a new series starts from its raw value


@given(st.lists(st.integers(min_value=0, max_value=WIDTH_32 - 1), min_size=1, max_size=50))
def test_any_sequence_of_raw_values_gives_a_total_that_never_decreases(raws: list[int]) -> None:
    t = CounterTracker()
    totals = [t.update(("k",), raw, wraps_at=WIDTH_32) for raw in raws]
    assert all(b >= a for a, b in zip(totals, totals[1:], strict=False))
    assert all((t.delta(("k",)) or 0) >= 0 for _ in totals)


def test_utilization_is_bits_over_capacity_and_unknown_without_a_speed() -> None:
    assert utilization(125_000_000, 1.0, 1e9) == pytest.approx(1.0)
    assert utilization(125_000_000, 1.0, None) is None
    assert utilization(None, 1.0, 1e9) is None
    assert utilization(10, None, 1e9) is None


def test_error_ratio_is_zero_for_an_idle_interval_and_unknown_on_the_first() -> None:
    assert error_ratio(0, 0) == 0.0
    assert error_ratio(1, 99) == pytest.approx(0.01)
    assert error_ratio(None, 5) is None
