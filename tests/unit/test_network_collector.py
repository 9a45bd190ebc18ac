"""Golden tests of the network collector on fixture trees (a real VM capture and InfiniBand trees)."""

from __future__ import annotations

import logging
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpuwarden.agent.registry import CollectorContext
from gpuwarden.catalog import catalog_names
from gpuwarden.collectors.network import NetworkCollector
from gpuwarden.collectors.network.catalog import CATALOG
from gpuwarden.config import from_mapping
from gpuwarden.health import HealthResult, State
from gpuwarden.paths import Paths
from tests.golden import assert_golden, exposition, split

FIXTURES = Path(__file__).parent.parent / "fixtures" / "network"


class FakeClock:
    """Deterministic monotonic clock: each collection happens `step` seconds after the previous one."""

    def __init__(self, step: float = 15.0) -> None:
        self.now, self.step = 1000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def make_collector(root: Path, **settings: Any) -> NetworkCollector:
    cfg = from_mapping({"collectors": {"network": settings}})
    paths = Paths(procfs=str(root / "proc"), sysfs=str(root / "sys"))
    ctx = CollectorContext(paths=paths, log=logging.getLogger("test"))
    return NetworkCollector(cfg.collector_settings("network"), ctx, clock=FakeClock())


def by_component(health: list[HealthResult]) -> dict[str, HealthResult]:
    return {h.component: h for h in health}


@pytest.mark.parametrize("case", ["real_vm", "h200_node", "infiniband", "interfaces_down", "files_missing"])
def test_one_collection_of_each_fixture_tree_gives_the_expected_exposition(case: str) -> None:
    collector = make_collector(FIXTURES / case)
    metrics, _ = split(collector.collect())
    assert_golden(exposition(metrics), FIXTURES / f"{case}.prom")


def test_wrapping_32_bit_ib_counters_and_a_recreated_interface_never_go_backwards(tmp_path: Path) -> None:
    # The collector reads the same tree twice while the files change under it, as sysfs does.
    shutil.copytree(FIXTURES / "counters_wrap" / "t0", tmp_path, dirs_exist_ok=True)
    collector = make_collector(tmp_path)
    first, _ = split(collector.collect())
    shutil.copytree(FIXTURES / "counters_wrap" / "t1", tmp_path, dirs_exist_ok=True)
    second, _ = split(collector.collect())
    text = exposition(second)
    assert_golden(text, FIXTURES / "counters_wrap.prom")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for m in first + second for s in m.samples}
    before = {(s.name, tuple(sorted(s.labels.items()))): s.value for m in first for s in m.samples}
    for key, value in samples.items():
        if key[0].endswith("_total") and key in before:
            assert value >= before[key], f"{key} went backwards"
    for m in second:
        if m.name.endswith("utilization_ratio") or m.name.endswith("error_ratio"):
            assert all(s.value >= 0 for s in m.samples), m.name


def test_the_infiniband_tree_reports_the_disabled_port_as_degraded() -> None:
    _, health = split(make_collector(FIXTURES / "infiniband").collect())
    ib = by_component(health)["network.infiniband"]
    assert ib.state == State.DEGRADED
    assert "mlx5_1/1 DOWN/Disabled" in ib.reason


def test_fewer_active_ib_ports_than_expected_is_unhealthy() -> None:
    collector = make_collector(FIXTURES / "infiniband", infiniband_expected_active_ports=4)
    ib = by_component(split(collector.collect())[1])["network.infiniband"]
    assert ib.state == State.UNHEALTHY
    assert ib.reason.startswith("2 of 4 expected port(s) active")


def test_an_expected_interface_down_or_missing_is_unhealthy_and_named() -> None:
    collector = make_collector(FIXTURES / "interfaces_down", expected_interfaces=["eth0", "eth1"])
    result = by_component(split(collector.collect())[1])["network.interfaces"]
    assert result.state == State.UNHEALTHY
    assert result.reason == "eth0 is down; eth1 is missing"


def test_loopback_with_operstate_unknown_and_carrier_counts_as_up() -> None:
    collector = make_collector(FIXTURES / "real_vm", expected_interfaces=["lo", "eth0"])
    assert by_component(split(collector.collect())[1])["network.interfaces"].state == State.HEALTHY


def test_a_missing_proc_net_dev_is_unknown_health_not_an_exception() -> None:
    result = by_component(split(make_collector(FIXTURES / "files_missing").collect())[1])[
        "network.interfaces"
    ]
    assert result.state == State.UNKNOWN
    assert "cannot read" in result.reason


def test_an_error_ratio_above_the_threshold_is_degraded(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "counters_wrap" / "t0", tmp_path, dirs_exist_ok=True)
    collector = make_collector(tmp_path, error_ratio_max=0.01)
    list(collector.collect())
    shutil.copytree(FIXTURES / "counters_wrap" / "t1", tmp_path, dirs_exist_ok=True)
    result = by_component(split(collector.collect())[1])["network.interfaces"]
    # eth0 gained 2 receive errors against 10 + 10 good packets: 2 / 22 = 9.09 %.
    assert result.state == State.DEGRADED
    assert result.reason == "eth0 9.09% errors"


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield server.getsockname()[1]


def test_a_full_fixture_emits_exactly_the_catalog(tmp_path: Path, listener: int) -> None:
    shutil.copytree(FIXTURES / "infiniband", tmp_path, dirs_exist_ok=True)
    collector = make_collector(tmp_path, peers=[{"name": "zk-1", "host": "127.0.0.1", "port": listener}])
    list(collector.collect())
    metrics, _ = split(collector.collect())  # the second cycle adds the interval ratios
    collector.close()
    assert {m.name for m in metrics} == {
        spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name for spec in CATALOG
    }
    assert len(catalog_names(CATALOG)) == len(CATALOG)
