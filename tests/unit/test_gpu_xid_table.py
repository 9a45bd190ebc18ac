"""NVIDIA's XID catalog as our actions: the whole table, the NVLink5 decode, XID 154, real kernel lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpuwarden.collectors.gpu.backend import XidEvent
from gpuwarden.collectors.gpu.kmsg import parse_line
from gpuwarden.collectors.gpu.xid import XidLedger
from gpuwarden.collectors.gpu.xid_table import (
    BUCKET_ACTIONS,
    NVLINK_RULES,
    UNSPECIFIED,
    XID_TABLE,
    decode_nvlink,
    recovery_action,
)
from gpuwarden.health import Action

ROOT = Path(__file__).resolve().parents[2]
LINES = ROOT / "tests/fixtures/nvml/xid-lines.tsv"


def test_the_table_holds_every_xid_nvidia_lists_and_each_has_an_action() -> None:
    assert sorted(XID_TABLE) == list(range(1, 173))
    assert {e.bucket for e in XID_TABLE.values()} - {""} <= set(BUCKET_ACTIONS)
    assert {code for code, e in XID_TABLE.items() if not e.bucket} == set(UNSPECIFIED)


def test_engine_exceptions_only_need_the_application_restarted() -> None:
    # Copy engines (39-41, 70-77, 85, 126-135), NVDEC (68, 83, 84, 88, 89, 96-98), NVJPG (82, 99-105), OFA.
    engines = [39, 40, 41, 68, 70, 82, 83, 85, 86, 88, 96, 99, 105, 126, 135, 139]
    assert {XID_TABLE[x].action for x in engines} == {Action.RESTART_WORKER}


def _sample(pattern: str) -> int:
    """A value that matches `pattern` ("-" bits as 0)."""
    return int(pattern.replace("-", "0"), 2)


@pytest.mark.parametrize("rule", NVLINK_RULES, ids=lambda r: f"{r.xid}-{r.unit}-{r.error_status:#x}")
def test_each_row_of_nvidias_nvlink5_decode_table_gives_its_own_action(rule) -> None:  # type: ignore[no-untyped-def]
    unit = rule.unit.split("/")[0]
    for pattern in rule.intrinfo:
        message = f"{unit} Fatal XC0 i0 Link 00 ({_sample(pattern):#010x} {rule.error_status:#010x} 0x0 0x0)"
        decoded = decode_nvlink(rule.xid, message)
        assert decoded is not None
        # Rows with one unit, pattern and status but different severities take the worst of them.
        same = [
            r
            for r in NVLINK_RULES
            if (r.xid, r.unit, r.intrinfo, r.error_status)
            == (rule.xid, rule.unit, rule.intrinfo, rule.error_status)
        ]
        assert decoded[0] in {BUCKET_ACTIONS[r.resolution] for r in same}


def test_an_error_status_with_several_bits_takes_the_worst_row() -> None:
    # SAW_MVB: 0x1 is IGNORE, 0x2 is RESET_GPU; a word with both bits set needs the reset.
    decoded = decode_nvlink(144, "SAW_MVB Fatal XC0 i0 Link 00 (0x00000001 0x00000003 0x0 0x0)")
    assert decoded is not None and decoded[0] is Action.RESET_GPU


def test_an_nvlink5_line_no_row_covers_follows_the_printed_severity() -> None:
    fatal = decode_nvlink(149, "NETIR_LINK_EVT Fatal XC0 i0 Link 01 (0x03f001c6 0x00000000 0x0 0x0)")
    nonfatal = decode_nvlink(146, "TLW_CTRL Nonfatal XC0 i0 Link 01 (0x00000009 0x40000000 0x0 0x0)")
    assert fatal is not None and fatal[0] is Action.RESET_GPU and "not in NVIDIA's decode" in fatal[1]
    assert nonfatal is not None and nonfatal[0] is Action.NONE


@pytest.mark.parametrize(
    ("code", "action"),
    [
        ("0x0 (None)", Action.NONE),
        ("0x1 (PF FLR)", Action.RESET_GPU),
        ("0x2 (OS Reboot)", Action.REBOOT_NODE),
        ("0x3 (Drain P2P)", Action.RESTART_WORKER),
        ("0x4 (Drain and Reset)", Action.RESET_GPU),
        ("0x9 (Something New)", Action.INSPECT_HARDWARE),
    ],
)
def test_xid_154_takes_the_recovery_action_its_message_names(code: str, action: Action) -> None:
    said = recovery_action(f"GPU recovery action changed from 0x0 (None) to {code}")
    assert said is not None and said[0] is action


def _fixture_lines() -> list[tuple[str, int, str, str]]:
    rows = []
    for line in LINES.read_text().splitlines():
        if line.startswith(("#", "source:")) or not line:
            continue
        action, xid, instance, text = line.split("\t")
        rows.append((action, int(xid), "" if instance == "-" else instance, text))
    return rows


@pytest.mark.parametrize(("action", "xid", "instance", "text"), _fixture_lines())
def test_real_kernel_log_lines_get_nvidias_action(action: str, xid: int, instance: str, text: str) -> None:
    line = parse_line(text)
    assert line is not None and (line.xid, line.gpu_instance) == (xid, instance)
    ledger = XidLedger()
    ledger.add(XidEvent(0, line.xid, "kmsg", 1000.0), "0", line.gpu_instance, line.message)
    assert ledger.verdict("0", 1001.0).action is Action(action)


def test_every_fixture_line_names_its_public_source() -> None:
    text = LINES.read_text()
    first_row = min(i for i, line in enumerate(text.splitlines()) if line and line[0] not in "#s")
    assert any(line.startswith("source: ") for line in text.splitlines()[:first_row])


def test_the_table_in_docs_gpu_md_matches_the_code() -> None:
    row = re.compile(r"^\| (\d+) \| ([^|]*) \| [^|]* \| ([^|]*) \| ([^|]*) \|$", re.M)
    rows = row.findall((ROOT / "docs/gpu.md").read_text())
    documented = {int(code): (mnemonic, bucket, ours) for code, mnemonic, bucket, ours in rows}
    assert sorted(documented) == sorted(XID_TABLE)
    for code, entry in XID_TABLE.items():
        mnemonic, bucket, ours = documented[code]
        assert mnemonic == entry.mnemonic.replace("|", "/")
        assert bucket == (entry.bucket or "(none)")
        assert f"`{entry.action}`" in ours, code
