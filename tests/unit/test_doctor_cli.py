"""`gpuwarden doctor` end to end on fixture trees: rows, fixes, JSON and the exit code."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuwarden.agent.context import doctor_inputs
from gpuwarden.cli import main
from gpuwarden.collectors.doctor.findings import Status, exit_code
from gpuwarden.collectors.doctor.run import DoctorInputs, run_checks
from gpuwarden.config import from_mapping
from gpuwarden.modelfiles import verify_manifest
from gpuwarden.paths import Paths

FIXTURES = Path(__file__).parent.parent / "fixtures" / "doctor"


def write_config(tmp_path: Path, case: str, **doctor: Any) -> str:
    root = FIXTURES / case
    cfg = {
        "paths": {"procfs": str(root / "proc"), "sysfs": str(root / "sys"), "rootfs": str(root / "rootfs")},
        "collectors": {
            "network": {"expected_interfaces": ["eth0"], "infiniband_expected_active_ports": 1},
            "node": {"disk_paths": ["/", {"path": "/models", "min_free": "1KiB"}]},
            "doctor": {
                "hugepages": 1024,
                "model_size": "140GB",
                "checksum_manifest": "/models/llama-3-70b/SHA256SUMS",
                **doctor,
            },
        },
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def run_json(capsys: pytest.CaptureFixture[str], config: str) -> tuple[int, dict[str, dict[str, str]]]:
    code = main(["doctor", "--config", config, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["exit_code"] == code
    return code, {f["check"]: f for f in report["findings"]}


def test_thp_always_too_little_memory_and_a_corrupt_shard_fail_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = run_json(capsys, write_config(tmp_path, "thp_always_low_memory_corrupt"))
    assert code == 1
    assert rows["transparent_hugepages"]["status"] == "fail"
    assert rows["transparent_hugepages"]["detail"] == "mode always, allowed: never"
    assert "transparent_hugepage=never" in rows["transparent_hugepages"]["fix"]
    assert rows["host_memory"]["status"] == "fail"
    assert rows["host_memory"]["detail"] == "16.0 GiB total, need 195.6 GiB (1.5 x model 130.4 GiB)"
    assert rows["hugepages"]["status"] == "fail" and "vm.nr_hugepages=1024" in rows["hugepages"]["fix"]
    assert rows["model_checksums"]["status"] == "fail"
    assert rows["model_checksums"]["detail"] == (
        "1 of 3 file(s) bad: model-00002-of-00002.safetensors (sha256 differs)"
    )
    # What is fine on that node still passes: the failures are specific.
    assert rows["network_interfaces"]["status"] == "pass"
    assert rows["infiniband_ports"]["status"] == "pass"
    assert rows["disk_space:/models"]["status"] == "pass"


def test_a_healthy_node_passes_with_exit_0_and_says_what_it_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = run_json(capsys, write_config(tmp_path, "healthy"))
    assert code == 0
    assert {r["status"] for r in rows.values()} <= {"pass", "skip"}
    assert rows["model_checksums"]["detail"] == "3 file(s) match /models/llama-3-70b/SHA256SUMS"
    assert rows["transparent_hugepages"]["detail"] == "mode never"
    for row in rows.values():
        if row["status"] == "skip":
            assert row["detail"], f"{row['check']} was skipped without a reason"


def test_the_table_shows_each_failure_with_its_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["doctor", "--config", write_config(tmp_path, "thp_always_low_memory_corrupt")])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL"]
    thp = next(i for i, line in enumerate(lines) if line.startswith("transparent_hugepages"))
    assert "FAIL" in lines[thp] and lines[thp + 1].strip().startswith("fix: echo never >")
    assert "4 failed" in lines[-1] and lines[-1].endswith("0 could not run; exit 1")


def test_skip_checksums_leaves_the_weights_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--config", write_config(tmp_path, "healthy"), "--json", "--skip-checksums"])
    rows = {f["check"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    assert code == 0
    assert rows["model_checksums"]["status"] == "skip"


def test_a_missing_manifest_is_a_failure_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "healthy", checksum_manifest="/models/nope/SHA256SUMS")
    code, rows = run_json(capsys, config)
    assert code == 1
    assert "cannot read" in rows["model_checksums"]["detail"]


@pytest.mark.parametrize(
    ("doctor", "problem"),
    [
        ({"model_size": "lots"}, "collectors.doctor.model_size"),
        ({"software": {"torch": "2.x"}}, "collectors.doctor.software.torch: not a version specifier"),
        ({"thp_allowed": ["sometimes"]}, "collectors.doctor.thp_allowed[0]"),
        ({"driver_min_version": "new"}, "collectors.doctor.driver_min_version: not a version"),
        ({"gpu_count": 8}, "collectors.doctor.gpu_count: unknown key"),
    ],
)
def test_bad_doctor_config_exits_78_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doctor: dict[str, Any], problem: str
) -> None:
    code = main(["doctor", "--config", write_config(tmp_path, "healthy", **doctor)])
    err = capsys.readouterr().err
    assert code == 78
    assert problem in err
    assert "Traceback" not in err


@pytest.mark.integration
def test_doctor_runs_on_this_machine_and_says_why_gpu_checks_were_skipped() -> None:
    # The real host: no config, real /proc and /sys. On a machine without an NVIDIA driver the GPU rows
    # are skips with the reason; on a GPU node they pass or fail. Either way, no traceback and exit 0 or 1.
    proc = subprocess.run(
        [sys.executable, "-m", "gpuwarden", "doctor", "--json"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode in (0, 1), proc.stderr
    rows = {f["check"]: f for f in json.loads(proc.stdout)["findings"]}
    driver = rows["nvidia_driver"]
    if driver["status"] == "skip":
        assert driver["detail"].startswith("skipped: no NVIDIA driver")
        assert rows["cuda_driver"]["status"] == "skip"
    assert "Traceback" not in proc.stderr


def test_a_check_that_crashes_is_an_error_row_and_exit_2_when_nothing_failed() -> None:
    def broken() -> dict[str, str | None]:
        raise PermissionError("site-packages unreadable")

    settings = from_mapping(
        {"collectors": {"doctor": {"thp_allowed": ["always", "madvise", "never"]}}}
    ).collector_settings("doctor")
    findings = run_checks(
        DoctorInputs(settings=settings, paths=Paths(procfs="/nonexistent"), versions=broken)
    )
    rows = {f.check: f for f in findings}
    assert rows["software"].status == Status.ERROR
    assert rows["software"].detail == "check crashed: PermissionError: site-packages unreadable"
    assert not [f for f in findings if f.status == Status.FAIL]
    assert exit_code(findings) == 2


def test_the_checksum_progress_bar_draws_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "w.bin").write_bytes(b"x" * 4096)
    (tmp_path / "SUMS").write_text(f"{hashlib.sha256(b'x' * 4096).hexdigest()}  w.bin\n")
    verify_manifest(str(tmp_path / "SUMS"), show_progress=False)
    assert capsys.readouterr().err == ""
    verify_manifest(str(tmp_path / "SUMS"), show_progress=True)
    assert "checksums" in capsys.readouterr().err


def test_the_old_top_level_doctor_section_says_where_its_keys_went(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"doctor": {"gpu_count": 8}}))
    assert main(["doctor", "--config", str(path)]) == 78
    err = capsys.readouterr().err
    assert "doctor: moved to collectors.doctor (gpu_count is collectors.gpu.expected_gpus" in err


def test_the_gpu_count_and_volumes_come_from_the_gpu_and_node_sections(tmp_path: Path) -> None:
    root = FIXTURES / "healthy"
    config = from_mapping(
        {
            "collectors": {
                "gpu": {"expected_gpus": 8},
                "node": {"disk_paths": ["/", {"path": "/models", "min_free": "1PiB"}]},
            }
        }
    )
    inputs = replace(doctor_inputs(config, versions=dict), paths=Paths(rootfs=str(root / "rootfs")))
    assert inputs.expected_gpus == 8 and [v.path for v in inputs.volumes] == ["/models"]
    rows = {f.check: f for f in run_checks(inputs, nvml="skipped: no NVIDIA driver")}
    assert rows["disk_space:/models"].status == Status.FAIL
    assert rows["disk_space:/models"].detail.endswith("need 1048576.0 GiB")
    assert rows["gpu_count"].status == Status.SKIP  # asked, but NVML could not answer
