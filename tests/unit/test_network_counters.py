"""Network collector on real-world sysfs/procfs samples: IB counter widths and a malformed /proc/net/dev line.

IB trees come from node_exporter's and procfs's fixtures (tests/fixtures/network/*/SOURCE); each test
reads a tree, changes the counters the way the kernel would between two reads, and reads it again.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from gpuwarden.collectors.network import NetworkCollector
from gpuwarden.collectors.network.counters import WIDTH_32
from gpuwarden.health import State
from gpuwarden.readers.infiniband import IBPort, data_counters
from tests.golden import assert_golden, exposition, split
from tests.unit.test_network_collector import FIXTURES, by_component, make_collector

Sample = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(collector: NetworkCollector) -> Sample:
    metrics, _ = split(collector.collect())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for m in metrics for s in m.samples}


def port(device: str, name: str, port_no: str = "1") -> tuple[str, tuple[tuple[str, str], ...]]:
    return (f"gpuwarden_network_infiniband_{name}", (("device", device), ("port", port_no)))


def write(tree: Path, device: str, rel: str, value: int) -> None:
    (tree / "sys/class/infiniband" / device / "ports/1" / rel).write_text(f"{value}\n")


@pytest.fixture
def tree(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    shutil.copytree(FIXTURES / request.param, tmp_path, dirs_exist_ok=True)
    return tmp_path


@pytest.mark.parametrize("case", ["infiniband_node_exporter", "infiniband_procfs"])
def test_one_collection_of_each_public_ib_tree_gives_the_expected_exposition(case: str) -> None:
    metrics, _ = split(make_collector(FIXTURES / case).collect())
    assert_golden(exposition(metrics), FIXTURES / f"{case}.prom")


@pytest.mark.parametrize("tree", ["infiniband_node_exporter"], indirect=True)
def test_the_64_bit_counters_ext_is_read_and_the_wrapping_32_bit_counter_ignored(tree: Path) -> None:
    write(tree, "mlx4_0", "counters/port_xmit_data", WIDTH_32 - 100)
    write(tree, "mlx4_0", "counters_ext/port_xmit_data_64", WIDTH_32 + 5000)
    collector = make_collector(tree)
    before = samples(collector)
    assert before[port("mlx4_0", "transmit_bytes_total")] == (WIDTH_32 + 5000) * 4
    write(tree, "mlx4_0", "counters/port_xmit_data", 1000)  # the 32-bit counter wrapped meanwhile
    write(tree, "mlx4_0", "counters_ext/port_xmit_data_64", WIDTH_32 + 6100)
    after = samples(collector)
    assert after[port("mlx4_0", "transmit_bytes_total")] == (WIDTH_32 + 6100) * 4
    stats = {dict(labels).get("stat") for name, labels in after if name.endswith("port_stat_total")}
    assert "port_unicast_xmit_packets" in stats and "port_xmit_data" not in stats


@pytest.mark.parametrize("tree", ["infiniband_procfs"], indirect=True)
def test_a_decrease_of_an_extended_table_counter_is_a_reset_not_a_wrap(tree: Path) -> None:
    write(tree, "mlx5_0", "counters/port_xmit_data", WIDTH_32 - 100)
    collector = make_collector(tree)
    samples(collector)
    write(tree, "mlx5_0", "counters/port_xmit_data", 50)  # 64-bit (unicast_* listed): a reset
    after = samples(collector)
    assert after[port("mlx5_0", "transmit_bytes_total")] == (WIDTH_32 - 100 + 50) * 4


@pytest.mark.parametrize("tree", ["infiniband_procfs"], indirect=True)
def test_a_counter_seen_past_32_bits_never_wraps_even_without_the_extended_names(tree: Path) -> None:
    # mlx4_0 here lists no unicast_* files, but port_xmit_data reads 26509113295: the 64-bit noietf table.
    collector = make_collector(tree)
    first = samples(collector)[port("mlx4_0", "transmit_bytes_total")]
    write(tree, "mlx4_0", "counters/port_xmit_data", 1000)  # counters reset (driver reload)
    samples(collector)
    write(tree, "mlx4_0", "counters/port_xmit_data", 400)  # and again, now below 2**32
    after = samples(collector)
    assert after[port("mlx4_0", "transmit_bytes_total")] == first + (1000 + 400) * 4


def test_a_32_bit_counter_that_goes_down_still_wraps(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "counters_wrap" / "t0", tmp_path, dirs_exist_ok=True)
    collector = make_collector(tmp_path)
    samples(collector)
    shutil.copytree(FIXTURES / "counters_wrap" / "t1", tmp_path, dirs_exist_ok=True)
    after = samples(collector)
    assert after[port("mlx5_0", "transmit_bytes_total")] == (WIDTH_32 + 12000) * 4


def test_a_saturated_32_bit_counter_reports_no_utilization_rather_than_zero(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "counters_wrap" / "t0", tmp_path, dirs_exist_ok=True)
    write(tmp_path, "mlx5_0", "counters/port_xmit_data", WIDTH_32 - 1)
    collector = make_collector(tmp_path)
    samples(collector)
    after = samples(collector)
    assert port("mlx5_0", "transmit_utilization_ratio") not in after
    assert port("mlx5_0", "receive_utilization_ratio") in after


def test_efa_ports_take_their_data_counters_from_hw_counters() -> None:
    # hw_counters names of an AWS EFA port (rdmap0s31) as AWS's EC2 user guide lists them ("Monitor an
    # Elastic Fabric Adapter"); EFA has no PMA, so no counters/ directory.
    hw = {
        "rx_bytes": 85466418782288,
        "tx_bytes": 84417311044934,
        "rx_pkts": 1776383627,
        "tx_pkts": 11002381069,
    }
    efa = IBPort("rdmap0s31", "1", "ACTIVE", "LinkUp", "Ethernet", 1e11, hw_counters={**hw, "rx_drops": 0})
    data = data_counters(efa)
    assert {k: (d.raw, d.scale, d.bits, d.source) for k, d in data.items()} == {
        "receive_bytes": (hw["rx_bytes"], 1, 64, "hw_counters/rx_bytes"),
        "transmit_bytes": (hw["tx_bytes"], 1, 64, "hw_counters/tx_bytes"),
        "receive_packets": (hw["rx_pkts"], 1, 64, "hw_counters/rx_pkts"),
        "transmit_packets": (hw["tx_pkts"], 1, 64, "hw_counters/tx_pkts"),
    }


def malformed_tree(tmp_path: Path, line: str) -> Path:
    shutil.copytree(FIXTURES / "real_vm", tmp_path, dirs_exist_ok=True)
    dev = tmp_path / "proc/net/dev"
    lines = dev.read_text().splitlines()
    dev.write_text("\n".join([*lines[:3], line, *lines[4:]]) + "\n")  # ifb0's line replaced
    return tmp_path


def test_one_malformed_line_drops_that_line_only_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree = malformed_tree(tmp_path, "  ifb0:       0       0    0    0    0")  # cut short
    collector = make_collector(tree)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            metrics, health = split(collector.collect())
    text = exposition(metrics)
    for iface in ("lo", "ifb1", "eth0"):
        assert f'gpuwarden_network_receive_bytes_total{{interface="{iface}"}}' in text
    assert 'interface="ifb0"' not in text
    assert "gpuwarden_network_malformed_lines 1.0" in text
    result = by_component(health)["network.interfaces"]
    assert result.state == State.HEALTHY
    assert result.reason == "3 interface(s) read; 1 malformed line(s) of /proc/net/dev skipped"
    warnings = [r.getMessage() for r in caplog.records if "/proc/net/dev" in r.getMessage()]
    assert warnings == [
        "skipping /proc/net/dev line 4 (ifb0): 5 fields, the kernel prints 16 (until it parses again)"
    ]


def test_an_expected_interface_on_a_malformed_line_is_unknown_not_missing(tmp_path: Path) -> None:
    tree = malformed_tree(tmp_path, "  ifb0: 1 2 3 4 0 0 0 x 5 6 7 8 0 0 0 0")
    collector = make_collector(tree, expected_interfaces=["ifb0", "eth0"])
    result = by_component(split(collector.collect())[1])["network.interfaces"]
    assert result.state == State.UNKNOWN
    assert result.reason == "ifb0's line in /proc/net/dev is malformed"
