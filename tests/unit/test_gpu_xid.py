"""XIDs: kernel-log parsing (table), de-duplication across sources, faults and escalation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuwarden.collectors.gpu.backend import XidEvent
from gpuwarden.collectors.gpu.kmsg import KmsgReader, KmsgXid, parse_line, pci_key, record_message
from gpuwarden.collectors.gpu.xid import XidLedger
from gpuwarden.collectors.gpu.xid_table import XID_TABLE
from gpuwarden.health import Action, State

H200 = (0, 0, 6)  # PCI 00000000:00:06.0, the recorded H200


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "NVRM: Xid (PCI:0000:00:06): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
            (H200, 79, "xid", ""),
        ),
        (
            "NVRM: Xid (PCI:0000:3b:00): 119, pid=473, name=python3, Timeout after 6s of waiting for RPC",
            ((0, 0x3B, 0), 119, "xid", ""),
        ),
        ("NVRM: Xid (0000:86:00): 13, Graphics Exception: ESR 0x504648=0x2", ((0, 0x86, 0), 13, "xid", "")),
        (
            "NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, pid=7194, Contained: CE User Channel (0x9).",
            ((0, 1, 0), 94, "xid", "5"),
        ),
        (
            "NVRM: Xid (PCI:0000:3b:00 GPU-I:02 GPU-CI:01): 31, pid=9, name=a, MMU Fault",
            ((0, 0x3B, 0), 31, "xid", "2"),
        ),
        ("NVRM: GPU 0000:00:06.0: GPU has fallen off the bus.", (H200, 79, "text", "")),
        ("NVRM: GPU at PCI:0000:18:00: GPU-8f6b has fallen off the bus.", ((0, 0x18, 0), 79, "text", "")),
        (
            "NVRM: The GPU has fallen off the bus or has otherwise become inaccessible.",
            (None, 79, "text", ""),
        ),
        ("NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build", None),
        ("usb 1-1: new high-speed USB device number 2 using xhci_hcd", None),
        ("Xid 79 mentioned by someone who is not the driver", None),
    ],
)
def test_kernel_log_lines_parse_to_pci_id_xid_form_and_gpu_instance(message: str, expected: object) -> None:
    line = parse_line(message)
    got = None if line is None else (line.pci, line.xid, line.form, line.gpu_instance)
    assert got == expected


def test_the_text_after_the_xid_number_is_kept_for_the_decode() -> None:
    line = parse_line("NVRM: Xid (PCI:0008:01:00): 154, GPU recovery action changed from 0x0 (None) to 0x1")
    assert isinstance(line, KmsgXid)
    assert line.message == "GPU recovery action changed from 0x0 (None) to 0x1"


def test_nvml_and_kernel_pci_ids_normalise_to_the_same_key() -> None:
    assert pci_key("00000000:00:06.0") == pci_key("PCI:0000:00:06") == H200
    assert pci_key("not a bus id") is None


def test_a_kmsg_record_yields_its_message_without_the_header() -> None:
    assert record_message("4,1005,7200123,-;NVRM: Xid (PCI:0000:00:06): 119, x") == (
        7.200123,
        "NVRM: Xid (PCI:0000:00:06): 119, x",
    )


@given(st.text())
def test_no_text_makes_the_parser_raise(text: str) -> None:
    result = parse_line(text)
    assert result is None or result.xid >= 0


def test_the_reader_returns_only_new_records_on_each_poll(tmp_path) -> None:  # type: ignore[no-untyped-def]
    kmsg = tmp_path / "kmsg"
    kmsg.write_text("6,1,1000000,-;first\n SUBSYSTEM=pci\n6,2,2000000,-;sec")
    reader = KmsgReader(str(kmsg))
    assert reader.poll() == [(1.0, "first")]
    with kmsg.open("a") as f:
        f.write("ond\n6,3,3000000,-;third\n")
    assert reader.poll() == [(2.0, "second"), (3.0, "third")]
    assert reader.poll() == []
    reader.close()


def test_an_unreadable_kernel_log_is_reported_not_raised(tmp_path) -> None:  # type: ignore[no-untyped-def]
    reader = KmsgReader(str(tmp_path / "absent"))
    assert reader.poll() == []
    assert reader.error is not None and "cannot open" in reader.error


def event(xid: int, source: str, t: float) -> XidEvent:
    return XidEvent(0, xid, source, t)


def test_the_same_xid_from_nvml_and_the_kernel_log_counts_once() -> None:
    ledger = XidLedger(dedup_window=10)
    assert ledger.add(event(79, "nvml", 1000.0), "0")
    assert not ledger.add(event(79, "kmsg", 1003.0), "0")
    assert not ledger.add(event(79, "kmsg-text", 1003.5), "0")
    assert ledger.counts[("0", 79, "")] == 1


def test_repeats_from_one_source_and_late_echoes_are_separate_errors() -> None:
    ledger = XidLedger(dedup_window=10)
    assert ledger.add(event(13, "kmsg", 1000.0), "0")
    assert ledger.add(event(13, "kmsg", 1001.0), "0")  # the driver logged it twice: two errors
    assert ledger.add(event(13, "nvml", 1030.0), "0")  # outside the window: a new error
    assert ledger.counts[("0", 13, "")] == 3
    assert ledger.last_seen[("0", 13, "")] == 1030.0


@pytest.mark.parametrize(
    ("xid", "state", "action"),
    [
        (79, State.UNHEALTHY, Action.REBOOT_NODE),
        (48, State.UNHEALTHY, Action.RESET_GPU),
        (119, State.UNHEALTHY, Action.RESET_GPU),
        (13, State.DEGRADED, Action.RESTART_WORKER),
        (94, State.DEGRADED, Action.RESTART_WORKER),
        (43, State.HEALTHY, Action.NONE),
        (63, State.HEALTHY, Action.NONE),
        (74, State.UNHEALTHY, Action.RESET_GPU),  # NVIDIA's NVLink workflow starts with a reset
        (39, State.DEGRADED, Action.RESTART_WORKER),  # copy engine exception
        (68, State.DEGRADED, Action.RESTART_WORKER),  # NVDEC0 exception
        (82, State.DEGRADED, Action.RESTART_WORKER),  # NVJPG0 error
        (86, State.DEGRADED, Action.RESTART_WORKER),  # OFA exception
        (151, State.UNHEALTHY, Action.REBOOT_NODE),  # key rotation error: restart the VM
        (999, State.UNHEALTHY, Action.INSPECT_HARDWARE),  # not in the catalog: a person looks
    ],
)
def test_each_xid_gets_the_action_of_nvidias_catalog(xid: int, state: State, action: Action) -> None:
    ledger = XidLedger()
    ledger.add(event(xid, "nvml", 1000.0), "0")
    verdict = ledger.verdict("0", 1001.0)
    assert (verdict.state, verdict.action) == (state, action)


def test_a_per_xid_override_replaces_the_catalog_action() -> None:
    ledger = XidLedger(overrides={79: Action.INSPECT_HARDWARE, 13: Action.NONE})
    ledger.add(event(13, "nvml", 1000.0), "0")
    assert ledger.verdict("0", 1001.0).state is State.HEALTHY
    ledger.add(event(79, "nvml", 1000.0), "0")
    assert ledger.verdict("0", 1001.0).action is Action.INSPECT_HARDWARE


def test_repeated_faults_escalate_one_step_and_ignored_xids_never_do() -> None:
    ledger = XidLedger(escalate_after=3, escalate_window=3600, burst_window=60)
    for t in (1000.0, 1100.0):
        ledger.add(event(48, "nvml", t), "0")
    assert ledger.verdict("0", 1200.0).action is Action.RESET_GPU
    ledger.add(event(48, "nvml", 1200.0), "0")
    escalated = ledger.verdict("0", 1201.0)
    assert escalated.action is Action.REBOOT_NODE and "3 faults: escalated" in escalated.reason
    quiet = XidLedger(escalate_after=1)
    quiet.add(event(43, "nvml", 1000.0), "0")
    assert quiet.verdict("0", 1001.0).action is Action.NONE


def test_one_fault_printed_many_times_within_milliseconds_does_not_escalate() -> None:
    ledger = XidLedger(escalate_after=3)
    for i in range(12):  # XID 13 once per faulting SM, within a few milliseconds
        assert ledger.add(event(13, "kmsg", 1000.0 + i * 0.001), "0")
    verdict = ledger.verdict("0", 1001.0)
    assert verdict.action is Action.RESTART_WORKER and "escalated" not in verdict.reason
    assert ledger.counts[("0", 13, "")] == 12  # the counter still counts every report


def test_a_hang_that_repeats_its_xid_for_minutes_is_one_fault() -> None:
    # gpud's testdata/dmesg-with-xid-119.log: one GSP hang logs XID 119 at 16:24:18, :24, :30, then at
    # 16:27:12 and 16:30:13 whenever a tool calls into the GPU.
    ledger = XidLedger(escalate_after=3)
    for t in (0.0, 6.0, 12.0, 174.0, 355.0):
        ledger.add(event(119, "kmsg", 1000.0 + t), "0")
    assert ledger.verdict("0", 1400.0).action is Action.RESET_GPU


def test_faults_separated_by_a_quiet_gap_are_counted_apart() -> None:
    ledger = XidLedger(escalate_after=3, burst_window=300)
    for start in (0.0, 1000.0, 2000.0):
        for i in range(5):
            ledger.add(event(119, "kmsg", 1000.0 + start + i), "0")
    verdict = ledger.verdict("0", 3100.0)
    assert verdict.action is Action.REBOOT_NODE and "3 faults" in verdict.reason


def test_the_message_refines_an_nvml_event_it_duplicates() -> None:
    ledger = XidLedger()
    assert ledger.add(event(154, "nvml", 1000.0), "0")  # NVML carries no text: inspect until we know
    assert ledger.verdict("0", 1000.5).action is Action.INSPECT_HARDWARE
    text = "GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)"
    assert not ledger.add(event(154, "kmsg", 1000.2), "0", message=text)
    verdict = ledger.verdict("0", 1001.0)
    assert verdict.action is Action.RESET_GPU and "GPU Reset Required" in verdict.reason


def test_xid_154s_latest_recovery_action_replaces_the_earlier_one() -> None:
    ledger = XidLedger()
    changed = "GPU recovery action changed from"
    ledger.add(event(154, "kmsg", 1000.0), "0", message=f"{changed} 0x0 (None) to 0x1 (GPU Reset Required)")
    ledger.add(event(154, "kmsg", 1010.0), "0", message=f"{changed} 0x1 (GPU Reset Required) to 0x0 (None)")
    assert ledger.verdict("0", 1011.0).action is Action.NONE


def test_a_mig_xid_names_its_gpu_instance_in_the_reason_and_counter() -> None:
    ledger = XidLedger()
    ledger.add(event(94, "kmsg", 1000.0), "0", gpu_instance="5")
    assert ledger.counts[("0", 94, "5")] == 1
    assert "GPU instance 5" in ledger.verdict("0", 1001.0).reason


def test_an_xid_older_than_the_lookback_no_longer_counts_against_health() -> None:
    ledger = XidLedger(lookback=600)
    ledger.add(event(79, "nvml", 1000.0), "0")
    assert ledger.verdict("0", 1599.0).state is State.UNHEALTHY
    assert ledger.verdict("0", 1601.0).state is State.HEALTHY
    assert ledger.counts[("0", 79, "")] == 1  # the counter never goes down


def test_the_worst_xid_on_a_gpu_decides_and_other_gpus_are_untouched() -> None:
    ledger = XidLedger()
    ledger.add(event(13, "nvml", 1000.0), "0")
    ledger.add(event(79, "nvml", 1000.0), "0")
    assert ledger.verdict("0", 1001.0).action is Action.REBOOT_NODE
    assert ledger.verdict("1", 1001.0).state is State.HEALTHY


def test_the_catalog_covers_the_xids_nvml_events_are_known_to_miss() -> None:
    # DCGM#162 (79, 119, 120) and DCGM#235 (62): the kernel-log path exists for these.
    assert {62, 79, 119, 120} <= set(XID_TABLE)
