"""NVIDIA's XID catalog as our actions: every XID NVIDIA lists, its NVLink5 decode, and XID 154.

The data are NVIDIA's spreadsheet, kept as two tab-separated files beside this module (xid_catalog.tsv,
xid_nvlink.tsv; their headers name the source and date). This module only maps NVIDIA's "Resolution
Bucket (Immediate Action)" to our actions:

  RESTART_APP → restart_worker    RESET_GPU → reset_gpu    RESTART_BM / RESTART_VM → reboot_node
  IGNORE → none                   CONTACT_SUPPORT / CHECK_MECHANICALS / UPDATE_SWFW → inspect_hardware

and decides the workflow buckets, whose action depends on the message: WORKFLOW_NVLINK5_ERR (XIDs
144-150, decoded from IntrInfo and Error Status by the "Xid 144-150 Decode" sheet) and XID_154 (the
message names the new recovery action).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from importlib import resources

from gpuwarden.health import Action

BUCKET_ACTIONS: dict[str, Action] = {
    "RESTART_APP": Action.RESTART_WORKER,
    "RESET_GPU": Action.RESET_GPU,
    "RESTART_BM": Action.REBOOT_NODE,  # bare-metal restart
    "RESTART_VM": Action.REBOOT_NODE,  # on the node itself, the VM is the node
    "IGNORE": Action.NONE,
    "CONTACT_SUPPORT": Action.INSPECT_HARDWARE,
    "CHECK_MECHANICALS": Action.INSPECT_HARDWARE,  # XID 54: auxiliary power not connected
    "UPDATE_SWFW": Action.INSPECT_HARDWARE,  # XID 78: vGPU start error, a person updates the stack
    # Workflows with one immediate step: 45 follows the XID that caused it (its action wins when worse)
    # and alone means the application lost its context; 48's workflow resets the GPU to retire the page;
    # 74's NVLink workflow starts with a GPU reset; 159 (CHECK_UVM) is recovered by a reboot (as gpud).
    "WORKFLOW_XID_45": Action.RESTART_WORKER,
    "WORKFLOW_XID_48": Action.RESET_GPU,
    "WORKFLOW_NVLINK_ERR": Action.RESET_GPU,
    "CHECK_UVM": Action.REBOOT_NODE,
    # The message decides (decode_nvlink, recovery_action); without a readable message, inspect.
    "WORKFLOW_NVLINK5_ERR": Action.INSPECT_HARDWARE,
    "XID_154": Action.INSPECT_HARDWARE,
    # An NVLink5 error whose recovery is announced by the XID 154 that follows it: nothing until then.
    "XID_154_EVAL": Action.NONE,
}

# XIDs NVIDIA's sheet lists without an immediate action (162-172, new in R570-R580): our choice, by what
# the description says, until NVIDIA fills the column.
UNSPECIFIED: dict[int, Action] = {
    162: Action.NONE,  # power smoothing circuitry re-engaged: informational
    163: Action.NONE,  # power smoothing disengaged: informational
    164: Action.NONE,  # power smoothing circuitry low lifetime: a warning, the GPU works
    165: Action.INSPECT_HARDWARE,  # power smoothing lifetime exhausted
    166: Action.INSPECT_HARDWARE,  # NVLink encrypted traffic before the link was configured for it
    167: Action.REBOOT_NODE,  # PCIe fatal timeout: like a GPU off the bus
    168: Action.INSPECT_HARDWARE,  # errors in the write-protected region: less usable memory
    169: Action.RESET_GPU,  # SEC2 micro-controller halt, like XID 62's PMU halt
    170: Action.INSPECT_HARDWARE,  # NVLink interrupt in confidential-computing mode
    171: Action.RESET_GPU,  # details of an XID 48 (DRAM): XID 48's workflow
    172: Action.RESET_GPU,  # details of an XID 48 (SRAM): XID 48's workflow
}


@dataclass(frozen=True)
class XidEntry:
    code: int
    mnemonic: str
    description: str
    bucket: str  # NVIDIA's immediate action, "" where the sheet has none
    action: Action


@dataclass(frozen=True)
class NvlinkRule:
    xid: int
    unit: str
    intrinfo: tuple[str, str]  # V1 (< R575) and V2 (>= R575) patterns
    error_status: int
    resolution: str
    severity: str


def _rows(name: str) -> list[list[str]]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return list(csv.reader(lines[1:], delimiter="\t"))


def _entry(code: str, mnemonic: str, description: str, bucket: str) -> XidEntry:
    n = int(code)
    action = UNSPECIFIED[n] if not bucket else BUCKET_ACTIONS[bucket]
    return XidEntry(n, mnemonic, description, bucket, action)


XID_TABLE: dict[int, XidEntry] = {int(row[0]): _entry(*row) for row in _rows("xid_catalog.tsv")}
NVLINK_RULES: tuple[NvlinkRule, ...] = tuple(
    NvlinkRule(int(x), unit, (v1, v2), int(status, 16), resolution, severity)
    for x, unit, v1, v2, status, resolution, severity in _rows("xid_nvlink.tsv")
)

# "144, SAW_MVB Nonfatal XC0 i0 Link 00 (0x00000001 0x00000008 ...)": unit, severity, IntrInfo, status.
NVLINK_MESSAGE = re.compile(
    r"(?P<unit>[A-Z][A-Z0-9_]*(?:/[A-Z0-9_]+)?)\s+(?P<severity>Nonfatal|Fatal)\s+XC\d\s+i\d+\s+"
    r"Link\s+-?\d+\s+\((?P<intrinfo>0x[0-9a-fA-F]+)\s+(?P<status>0x[0-9a-fA-F]+)"
)


def _matches(pattern: str, value: int) -> bool:
    return all(c == "-" or int(c) == (value >> (31 - i)) & 1 for i, c in enumerate(pattern))


def _same_unit(rule_unit: str, logged: str) -> bool:
    return bool(set(rule_unit.split("/")) & set(logged.split("/")))


def decode_nvlink(xid: int, message: str) -> tuple[Action, str] | None:
    """An NVLink5 XID's action and a short reason from its message; None when the message has no decode.

    The rule is the one whose unit, IntrInfo pattern and Error Status match; Error Status is a bit mask
    for most units, so with no exact match every rule whose bits are set counts and the worst wins. A
    message that no rule covers takes the severity the driver printed: Fatal needs a GPU reset (as every
    fatal row of the sheet does), Nonfatal needs nothing."""
    m = NVLINK_MESSAGE.search(message)
    if m is None:
        return None
    unit, severity = m["unit"], m["severity"]
    intrinfo, status = int(m["intrinfo"], 16), int(m["status"], 16)
    rules = [
        r
        for r in NVLINK_RULES
        if r.xid == xid and _same_unit(r.unit, unit) and any(_matches(p, intrinfo) for p in r.intrinfo)
    ]
    hits = [r for r in rules if r.error_status == status] or [
        r for r in rules if r.error_status and status & r.error_status == r.error_status
    ]
    if not hits:
        action = Action.RESET_GPU if severity == "Fatal" else Action.NONE
        return action, f"{unit} {severity}, status {status:#x}: not in NVIDIA's decode table"
    worst = max(hits, key=lambda r: _RANK[BUCKET_ACTIONS[r.resolution]])
    return BUCKET_ACTIONS[worst.resolution], f"{unit} {worst.severity} ({worst.resolution})"


# nvmlGpuRecoveryAction_t, which XID 154 prints as "to 0x<n> (<name>)"; names differ across drivers
# ("Node Reboot Required", "OS Reboot"; "GPU Reset Required", "PF FLR"), the number does not.
RECOVERY_ACTIONS: dict[int, Action] = {
    0: Action.NONE,
    1: Action.RESET_GPU,
    2: Action.REBOOT_NODE,
    3: Action.RESTART_WORKER,  # drain P2P: stop the processes using peer-to-peer, then carry on
    4: Action.RESET_GPU,  # drain P2P and reset the GPU
    5: Action.INSPECT_HARDWARE,  # recover the IMEX domain: a fabric operation outside this node
    6: Action.RESET_GPU,  # reset the GPU's PCIe bus
    7: Action.REBOOT_NODE,  # reboot the system
}
RECOVERY_MESSAGE = re.compile(r"recovery action changed from .*? to (0x[0-9a-fA-F]+|\d+)\s*(?:\(([^)]*)\))?")


def recovery_action(message: str) -> tuple[Action, str] | None:
    """XID 154's new recovery action, e.g. "... from 0x0 (None) to 0x1 (GPU Reset Required)"."""
    m = RECOVERY_MESSAGE.search(message)
    if m is None:
        return None
    code = int(m[1], 0)
    name = m[2] or f"action {code}"
    action = RECOVERY_ACTIONS.get(code, Action.INSPECT_HARDWARE)
    return action, f"recovery action now {name}"


LADDER = (Action.NONE, Action.RESTART_WORKER, Action.RESET_GPU, Action.REBOOT_NODE, Action.INSPECT_HARDWARE)
_RANK = {action: i for i, action in enumerate(LADDER)}


def judge_message(xid: int, message: str) -> tuple[Action, str] | None:
    """The action a kernel-log message itself names (NVLink5 decode, XID 154), or None: the table's."""
    if 144 <= xid <= 150:
        return decode_nvlink(xid, message)
    if xid == 154:
        return recovery_action(message)
    return None
