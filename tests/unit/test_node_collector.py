"""Node collector: fixture trees (a capture of a Debian host and a derived unhealthy node) → exposition."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from gpuwarden.agent.context import build_collector
from gpuwarden.catalog import catalog_names
from gpuwarden.collectors import node
from gpuwarden.config import AgentConfig
from gpuwarden.health import Action, State
from gpuwarden.readers.host import parse_meminfo, parse_thp_mode
from tests.golden import assert_golden, exposition, split

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "node"


def make(case: str, **settings: object) -> node.NodeCollector:
    root = FIXTURES / case
    config = AgentConfig.model_validate(
        {
            "paths": {"procfs": str(root / "proc"), "sysfs": str(root / "sys")},
            "collectors": {"node": settings},
        }
    )
    collector = build_collector("node", config, logging.getLogger("test"))
    assert isinstance(collector, node.NodeCollector)
    return collector


@pytest.mark.parametrize("case", ["debian-host", "thp-always-low-memory", "empty"])
def test_fixture_tree_gives_the_expected_exposition(case: str) -> None:
    metrics, _ = split(make(case, disk_paths=[]).collect())
    assert_golden(exposition(metrics), FIXTURES / f"{case}.prom")


def test_a_full_tree_emits_exactly_the_catalog() -> None:
    metrics, _ = split(make("debian-host").collect())
    assert {m.name + ("_total" if m.type == "counter" else "") for m in metrics} == catalog_names(
        node.CATALOG
    )


def test_the_active_thp_mode_is_one_hot() -> None:
    metrics, _ = split(make("thp-always-low-memory", disk_paths=[]).collect())
    (thp,) = [m for m in metrics if m.name == "gpuwarden_node_transparent_hugepages_mode"]
    assert {s.labels["mode"]: s.value for s in thp.samples} == {"always": 1.0, "madvise": 0.0, "never": 0.0}


def test_low_available_memory_degrades_the_node_and_suggests_freeing_resources() -> None:
    _, health = split(make("thp-always-low-memory", disk_paths=[]).collect())
    (memory,) = [h for h in health if h.component == "node.memory"]
    assert memory.state == State.DEGRADED
    assert memory.suggested_action == Action.FREE_RESOURCES
    assert "2.0% of memory available" in memory.reason


def test_a_missing_meminfo_is_unknown_not_a_crash() -> None:
    _, health = split(make("empty", disk_paths=[]).collect())
    assert [(h.component, h.state) for h in health if h.component == "node.memory"] == [
        ("node.memory", State.UNKNOWN)
    ]


def test_disk_usage_matches_statvfs_of_the_configured_path(tmp_path: Path) -> None:
    metrics, health = split(make("debian-host", disk_paths=[str(tmp_path)]).collect())
    st = os.statvfs(tmp_path)
    size = {m.name: m.samples[0].value for m in metrics if m.name.startswith("gpuwarden_node_filesystem")}
    assert size["gpuwarden_node_filesystem_size_bytes"] == st.f_blocks * st.f_frsize
    assert abs(size["gpuwarden_node_filesystem_avail_bytes"] - st.f_bavail * st.f_frsize) < 64 << 20
    assert [h.state for h in health if h.component == "node.disk"] == [State.HEALTHY]


def test_a_disk_path_that_does_not_exist_is_unknown_with_a_reason(tmp_path: Path) -> None:
    _, health = split(make("debian-host", disk_paths=[str(tmp_path / "gone")]).collect())
    (disk,) = [h for h in health if h.component == "node.disk"]
    assert disk.state == State.UNKNOWN
    assert "gone (No such file or directory)" in disk.reason


def test_a_nearly_full_disk_degrades_the_node(tmp_path: Path) -> None:
    _, health = split(make("debian-host", disk_paths=[str(tmp_path)], disk_free_min_ratio=1.0).collect())
    (disk,) = [h for h in health if h.component == "node.disk"]
    assert disk.state == State.DEGRADED and "low disk space" in disk.reason


@pytest.mark.parametrize(
    ("text", "mode"),
    [("always [madvise] never\n", "madvise"), ("[always] madvise never", "always"), ("garbage", None)],
)
def test_thp_mode_is_the_bracketed_word(text: str, mode: str | None) -> None:
    assert parse_thp_mode(text) == mode


def test_meminfo_values_in_kb_become_bytes_and_counts_stay_counts() -> None:
    parsed = parse_meminfo("MemTotal:  2 kB\nHugePages_Total:  7\nHugepagesize: 2048 kB\n")
    assert parsed == {"MemTotal": 2048, "HugePages_Total": 7, "Hugepagesize": 2048 * 1024}


def test_a_disk_path_below_its_min_free_is_degraded_and_a_plain_path_is_short_for_a_mapping() -> None:
    collector = make("debian-host", disk_paths=["/", {"path": "/", "min_free": "1PiB"}])
    assert [d.path for d in collector.settings.disk_paths] == ["/", "/"]
    _, health = split(collector.collect())
    (disk,) = [h for h in health if h.component == "node.disk"]
    assert disk.state is State.DEGRADED and disk.suggested_action is Action.FREE_RESOURCES
    assert "free" in disk.reason
