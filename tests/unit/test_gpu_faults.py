"""Fault fixtures derived from the real H200 recording drive the right health states and actions."""

from __future__ import annotations

import json
import time
from pathlib import Path

from gpuwarden.health import Action, State
from tests.fixtures.nvml.derive_faults import derive, render
from tests.fixtures.nvml.support import NVML, health, kmsg_logged, recording, replay_collector
from tests.golden import exposition, split


def cycles(name: str, n: int, **settings: object) -> list[tuple[str, list]]:  # type: ignore[type-arg]
    """`n` collections of fixture `name`: (exposition, health results) each."""
    return cycles_of(recording(name), n, **settings)


def cycles_of(rec: dict, n: int, **settings: object) -> list[tuple[str, list]]:  # type: ignore[type-arg]
    settings.setdefault("nvml_events", False)
    c, _ = replay_collector(rec, **settings)
    out = []
    try:
        for _ in range(n):
            ms, results = split(c.collect())
            out.append((exposition(ms), results))
    finally:
        c.close()
    return out


def test_the_committed_fault_fixtures_are_exactly_what_derive_faults_makes_of_the_real_recording() -> None:
    for name, derived in derive(recording("h200-idle")).items():
        assert (NVML / f"{name}.json").read_text() == render(derived), f"{name}.json: run derive_faults.py"


def test_an_ecc_storm_makes_the_gpu_degraded_and_asks_for_inspection() -> None:
    (_, first), (_, second) = cycles("h200-ecc-storm", 2, nvml_events=False)
    assert health(first, "gpu.0.memory").state is State.HEALTHY
    storm = health(second, "gpu.0.memory")
    assert storm.state is State.DEGRADED and storm.suggested_action is Action.INSPECT_HARDWARE
    assert "4200 corrected errors" in storm.reason


def test_a_storm_below_the_configured_threshold_is_not_one() -> None:
    (_, _), (_, second) = cycles("h200-ecc-storm", 2, nvml_events=False, ecc_storm_errors=5000)
    assert health(second, "gpu.0.memory").state is State.HEALTHY


def test_a_pending_row_remap_asks_for_a_gpu_reset() -> None:
    [(text, results)] = cycles("h200-remap-pending", 1, nvml_events=False)
    result = health(results, "gpu.0.memory")
    assert (result.state, result.suggested_action) == (State.UNHEALTHY, Action.RESET_GPU)
    assert 'gpuwarden_gpu_remap_pending{gpu="0"' in text and "remap_pending" in text


def test_a_failed_row_remap_asks_for_hardware_inspection() -> None:
    [(_, results)] = cycles("h200-remap-failed", 1, nvml_events=False)
    result = health(results, "gpu.0.memory")
    assert (result.state, result.suggested_action) == (State.UNHEALTHY, Action.INSPECT_HARDWARE)


def test_the_drivers_recovery_action_is_followed() -> None:
    [(text, results)] = cycles("h200-recovery-reset", 1, nvml_events=False)
    result = health(results, "gpu.0.recovery")
    assert (result.state, result.suggested_action) == (State.UNHEALTHY, Action.RESET_GPU)
    assert 'gpuwarden_gpu_recovery_action{action="gpu_reset",gpu="0"' in text


def test_a_lost_gpu_is_unhealthy_with_a_reboot_and_exports_only_that_it_is_down() -> None:
    (first, _), (text, results) = cycles("h200-gpu-lost", 2, nvml_events=False)
    assert 'gpuwarden_gpu_up{gpu="0"' in first and "} 1.0" in first
    lost = health(results, "gpu.0.device")
    assert (lost.state, lost.suggested_action) == (State.UNHEALTHY, Action.REBOOT_NODE)
    assert "GPU_IS_LOST" in lost.reason
    per_gpu = [line for line in text.splitlines() if 'gpu="0"' in line]
    assert len(per_gpu) == 1 and per_gpu[0].startswith("gpuwarden_gpu_up{") and per_gpu[0].endswith(" 0.0")
    assert health(results, "gpu.driver").state is State.HEALTHY  # the driver answers; the GPU does not


def test_a_gpu_that_fell_off_the_bus_fails_the_expected_count() -> None:
    (_, first), (text, second) = cycles("h200-fell-off-bus", 2, nvml_events=False, expected_gpus=1)
    assert health(first, "gpu.count").state is State.HEALTHY
    missing = health(second, "gpu.count")
    assert (missing.state, missing.suggested_action) == (State.UNHEALTHY, Action.REBOOT_NODE)
    assert "gpuwarden_gpu_devices 0.0" in text and "gpuwarden_gpu_devices_expected 1.0" in text


def test_an_nvml_xid_79_event_is_counted_and_asks_for_a_reboot() -> None:
    c, _ = replay_collector("h200-xid79")
    try:
        deadline = time.monotonic() + 5
        while True:  # the event thread delivers asynchronously
            text_items = list(c.collect())
            ms, results = split(text_items)
            text = exposition(ms)
            if "gpuwarden_gpu_xid_errors_total{" in text or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        c.close()
    uuid = recording("h200-xid79")["devices"][0]["uuid"]["value"]
    labels = f'gpu="0",gpu_instance="",uuid="{uuid}",xid="79"'
    assert f"gpuwarden_gpu_xid_errors_total{{{labels}}} 1.0" in text
    assert 'gpuwarden_gpu_xid_last_seen_timestamp_seconds{gpu="0"' in text
    xid = health(results, "gpu.0.xid")
    assert (xid.state, xid.suggested_action) == (State.UNHEALTHY, Action.REBOOT_NODE)
    assert "fallen off the bus" in xid.reason


def test_the_kernel_log_and_nvml_report_one_xid_once(tmp_path: Path) -> None:
    (tmp_path / "kmsg").write_text(
        kmsg_logged("4,1,7200999,-;NVRM: Xid (PCI:0000:00:06): 79, pid=1, GPU has fallen off the bus.\n")
    )
    c, _ = replay_collector("h200-xid79", devfs=tmp_path)
    try:
        deadline = time.monotonic() + 5
        while not c.watcher or not c.xids.counts or c.watcher.events.qsize():
            list(c.collect())
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(0.1)
        text = exposition(split(c.collect())[0])
    finally:
        c.close()
    assert 'xid="79"} 1.0' in text  # kernel log and NVML event within the dedup window: one error
    assert 'gpuwarden_gpu_xid_source_up{source="kmsg"} 1.0' in text


def test_kernel_log_xids_map_to_the_gpu_by_pci_id(tmp_path: Path) -> None:
    (tmp_path / "kmsg").write_text(kmsg_logged((NVML / "kmsg-xid.txt").read_text()))
    c, _ = replay_collector("h200-idle", devfs=tmp_path, nvml_events=False)
    try:
        ms, results = split(c.collect())
    finally:
        c.close()
    text = exposition(ms)
    # The real H200's PCI id is 00000000:00:06.0; the kernel log says PCI:0000:00:06.
    assert 'gpuwarden_gpu_xid_errors_total{gpu="0",gpu_instance="",uuid="GPU-' in text
    assert 'xid="119"} 1.0' in text
    assert 'xid="79"} 1.0' in text  # the XID 79 line and the "fallen off the bus" line are one event
    xid = health(results, "gpu.0.xid")
    assert (xid.state, xid.suggested_action) == (State.UNHEALTHY, Action.REBOOT_NODE)


def test_a_fixture_file_keeps_its_json_format() -> None:
    for path in NVML.glob("h200-*.json"):
        assert json.loads(path.read_text())["format"] == "gpuwarden-nvml-recording/1", path.name


def test_nvml_that_refuses_to_start_on_a_node_with_a_driver_asks_for_a_config_fix() -> None:
    rec = {**recording("h200-idle"), "script": {"init_error": "nvmlInit failed: NVML_ERROR_NO_PERMISSION"}}
    [(text, results)] = cycles_of(rec, 1)
    driver = health(results, "gpu.driver")
    assert (driver.state, driver.suggested_action) == (State.UNKNOWN, Action.FIX_CONFIG)
    assert driver.reason == "NVML cannot start: nvmlInit failed: NVML_ERROR_NO_PERMISSION"
    assert "gpuwarden_gpu_nvml_up 0.0" in text


def test_a_failing_device_count_is_driver_health_not_a_crash() -> None:
    rec = {**recording("h200-idle"), "script": {"device_count": {"sequence": [1, {"error": 999}]}}}
    (_, first), (text, second) = cycles_of(rec, 2)
    assert health(first, "gpu.driver").state is State.HEALTHY
    driver = health(second, "gpu.driver")
    assert driver.state is State.UNHEALTHY and "NVML_ERROR_UNKNOWN" in driver.reason
    assert "gpuwarden_gpu_nvml_up 0.0" in text


def test_an_xid_logged_long_before_the_agent_started_keeps_its_time_and_no_longer_hurts_health(
    tmp_path: Path,
) -> None:
    age = min(600.0, time.monotonic() / 2)  # kmsg stamps count from boot: stay within this machine's uptime
    line = "4,1,1,-;NVRM: Xid (PCI:0000:00:06): 48, pid=1, DBE (0x1,0x2)\n"
    (tmp_path / "kmsg").write_text(kmsg_logged(line, seconds_ago=age))
    c, _ = replay_collector("h200-idle", devfs=tmp_path, nvml_events=False, xid_lookback=age / 2)
    try:
        before = time.time()
        ms, results = split(c.collect())
    finally:
        c.close()
    sample = next(
        s for m in ms for s in m.samples if s.name == "gpuwarden_gpu_xid_last_seen_timestamp_seconds"
    )
    assert abs(sample.value - (before - age)) < 1  # the kernel's stamp, not the time we read it
    assert 'xid="48"} 1.0' in exposition(ms)
    assert health(results, "gpu.0.xid").state is State.HEALTHY  # older than xid_lookback


def test_a_gpu_that_answers_again_after_a_reset_is_healthy_before_the_next_slow_read() -> None:
    rec = recording("h200-idle")
    name = rec["devices"][0]["name"]  # the first question of the slow tier
    rec["script"] = {"devices": [{"name": {"sequence": [name, {"error": 16}, name]}}]}
    c, _ = replay_collector(rec, nvml_events=False, slow_interval=0.5)
    try:
        list(c.collect())  # reads the slow tier
        time.sleep(0.55)
        _, reset = split(c.collect())  # the slow read answers RESET_REQUIRED
        ms, after = split(c.collect())  # the GPU was reset: the fast tier answers again
    finally:
        c.close()
    assert health(reset, "gpu.0.device").suggested_action is Action.RESET_GPU
    assert health(after, "gpu.0.device").state is State.HEALTHY
    assert "gpuwarden_gpu_info{" in exposition(ms)  # the last good slow read is served until the next
