"""The `collectors.gpu` config section: defaults, the replay backend, and errors that name their key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gpuwarden.config import EX_CONFIG, ConfigError, from_mapping
from gpuwarden.health import Action
from tests.fixtures.nvml.support import NVML


def test_the_defaults_use_the_real_driver() -> None:
    gpu = from_mapping({}).collector_settings("gpu")
    assert gpu.backend == "nvml" and gpu.replay_file is None and gpu.call_timeout < gpu.timeout


def test_replay_without_a_file_is_an_error_on_the_gpu_section() -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"collectors": {"gpu": {"backend": "replay"}}})
    assert err.value.problems == ["collectors.gpu: replay_file is required when backend is replay"]


def test_an_nvml_deadline_the_runner_would_cut_short_is_an_error() -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"collectors": {"gpu": {"timeout": 2, "call_timeout": 2}}})
    assert err.value.problems == ["collectors.gpu: call_timeout (2) must be less than timeout (2)"]


def test_an_unknown_xid_action_names_its_key_path() -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"collectors": {"gpu": {"xid_actions": {94: "explode"}}}})
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith(
        "collectors.gpu.xid_actions[94]: "
    )


def test_an_xid_action_the_verdict_cannot_rank_is_an_error_on_its_key() -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"collectors": {"gpu": {"xid_actions": {94: "check_workload"}}}})
    assert err.value.problems == [
        "collectors.gpu.xid_actions: XID 94: check_workload is not an XID action"
        " (one of none, restart_worker, reset_gpu, reboot_node, inspect_hardware)"
    ]


def test_xid_overrides_are_read_as_actions() -> None:
    gpu = from_mapping({"collectors": {"gpu": {"xid_actions": {94: "none"}}}}).collector_settings("gpu")
    assert gpu.xid_actions == {94: Action.NONE}


def test_check_config_exits_78_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "agent.yaml"
    bad.write_text("collectors:\n  gpu:\n    call_timeout: 0\n")
    run = subprocess.run(
        [sys.executable, "-m", "gpuwarden", "check-config", str(bad)], capture_output=True, text=True
    )
    assert run.returncode == EX_CONFIG
    assert run.stderr == "config error: collectors.gpu.call_timeout: must be > 0\n"


def test_a_replay_config_on_the_h200_recording_is_valid() -> None:
    cfg = from_mapping(
        {"collectors": {"gpu": {"backend": "replay", "replay_file": str(NVML / "h200-idle.json")}}}
    )
    assert cfg.collector_settings("gpu").backend == "replay"
