"""GPU collector on the answers recorded on a real H200 (idle and under a bf16 matmul load) → exposition."""

from __future__ import annotations

import subprocess

import pytest

from gpuwarden.catalog import catalog_names
from gpuwarden.collectors.gpu import metrics
from gpuwarden.collectors.gpu.queries import FIELDS, FIELDS_SLOW
from gpuwarden.health import State
from tests.fixtures.nvml.support import NVML, health, kmsg_logged, recording, replay_collector
from tests.golden import assert_golden, exposition, split


def names(items: list[object]) -> set[str]:
    ms, _ = split(items)
    return {m.name + ("_total" if m.type == "counter" else "") for m in ms}


@pytest.mark.parametrize("case", ["h200-idle", "h200-busy"])
def test_a_recorded_h200_gives_the_expected_exposition(case: str) -> None:
    c, _ = replay_collector(case, expected_gpus=1, nvml_events=False)
    try:
        list(c.collect())  # the first cycle reads the slow tier too; the second serves it from cache
        ms, results = split(c.collect())
    finally:
        c.close()
    assert_golden(exposition(ms), NVML / f"{case}.prom")
    assert {r.component: r.state for r in results} == {
        "gpu.driver": State.HEALTHY,
        "gpu.count": State.HEALTHY,
        "gpu.0.device": State.HEALTHY,
        "gpu.0.memory": State.HEALTHY,
        "gpu.0.thermal": State.HEALTHY,
        "gpu.0.pcie": State.HEALTHY,
        "gpu.0.recovery": State.HEALTHY,
        "gpu.0.xid": State.HEALTHY,
    }


def test_the_first_and_later_cycles_export_the_same_series() -> None:
    c, _ = replay_collector("h200-busy", nvml_events=False)
    try:
        first, second = exposition(split(c.collect())[0]), exposition(split(c.collect())[0])
    finally:
        c.close()
    assert first == second


def test_everything_in_the_catalog_is_emitted_except_what_the_h200_answered_not_supported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "kmsg").write_text(kmsg_logged((NVML / "kmsg-xid.txt").read_text()))
    c, _ = replay_collector("h200-busy", devfs=tmp_path, expected_gpus=1)
    try:
        emitted = names(list(c.collect()))
    finally:
        c.close()
    dev = recording("h200-busy")["devices"][0]
    refused = {k for k, v in dev.items() if v.get("error") == 3}
    refused |= {
        k for k, v in {**dev["fields"]["value"], **dev["fields_slow"]["value"]}.items() if isinstance(v, dict)
    }
    # What each absent family would have been built from, in the recording's own words.
    source = {
        "gpuwarden_gpu_nvlink_links": {f"nvlink_state_{i}" for i in range(18)},
        "gpuwarden_gpu_nvlink_errors_total": {k for k in FIELDS_SLOW if k.startswith("nvlink")},
        "gpuwarden_gpu_retired_pages": {"retired_pages_sbe", "retired_pages_dbe"},
        "gpuwarden_gpu_retired_pages_pending": {"retired_pages_pending"},
    }
    absent = catalog_names(metrics.CATALOG) - emitted
    assert absent == set(source)
    assert all(keys <= refused for keys in source.values())
    assert set(FIELDS) | set(FIELDS_SLOW) >= {"memory_temperature", "pcie_replay_counter"}


def test_process_memory_is_labelled_by_systemd_unit_never_by_pid() -> None:
    c, _ = replay_collector("h200-busy", nvml_events=False)
    try:
        text = exposition(split(c.collect())[0])
    finally:
        c.close()
    pid = recording("h200-busy")["devices"][0]["processes"]["value"][0]["pid"]
    assert 'gpuwarden_gpu_process_memory_used_bytes{gpu="0",unit="inference-worker.service"' in text
    assert f'"{pid}"' not in text


@pytest.mark.integration
def test_the_h200_exposition_passes_promtool_check_metrics() -> None:
    text = (NVML / "h200-busy.prom").read_text()
    check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
    assert check.returncode == 0 and check.stdout + check.stderr == b"", (
        check.stdout + check.stderr
    ).decode()


def test_units_are_converted_to_base_units() -> None:
    c, _ = replay_collector("h200-busy", nvml_events=False)
    try:
        text = exposition(split(c.collect())[0])
        results = list(c.collect())
    finally:
        c.close()
    dev = recording("h200-busy")["devices"][0]
    watts = dev["power_usage_mw"]["value"] / 1000
    assert f'gpuwarden_gpu_power_watts{{gpu="0",uuid="{dev["uuid"]["value"]}"}} {watts}' in text
    assert health(split(results)[1], "gpu.0.thermal").reason.startswith(
        f"{dev['thermal_margin']['value']} °C"
    )
