"""`gpu_quarantine`: after a fatal XID or uncorrectable memory errors on one GPU of a multi-GPU node,
restart the worker without that GPU (`CUDA_VISIBLE_DEVICES` by UUID), so the node keeps serving with less
capacity instead of failing every request that lands on the broken GPU.

The quarantine is a file (JSON, written atomically) that outlives agent restarts: only on-call releases a
GPU (`gpuwarden quarantine release UUID`), after the hardware was inspected. UUIDs, not indexes: an index
moves when a GPU falls off the bus, a UUID names the board (NVIDIA's CUDA docs accept `GPU-<uuid>` in
`CUDA_VISIBLE_DEVICES`). It never removes the last GPU (`min_gpus`): a node with no GPU serves nothing, so
that is a refusal that escalates. Runbook: docs/runbooks/gpu_quarantine.md.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from gpuwarden.remediations.playbooks.worker_restart import restart_steps
from gpuwarden.remediations.registry import (
    Check,
    Plan,
    PlaybookContext,
    Sample,
    Step,
    register_playbook,
)
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.settings import PlaybookSettings
from gpuwarden.remediations.targets import read_env, write_atomic, write_env

# `gpu0.xid` (the GPU collector today) and `gpu.0.memory` (the hierarchical names of CONTRACTS.md).
_GPU_COMPONENT = re.compile(r"^gpu\.?(\d+)(\.|$)")


class GpuQuarantineSettings(PlaybookSettings):
    quarantine_file: str = Field(
        "/var/lib/gpuwarden/remediation/quarantine.json",
        description="the quarantined GPUs (JSON); kept across agent restarts until on-call releases one",
    )
    env_var: str = Field(
        "CUDA_VISIBLE_DEVICES",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="key in the target's env file that lists the GPUs the worker may use, by UUID",
    )
    min_gpus: int = Field(1, ge=1, description="never leave the worker fewer GPUs than this (escalate)")
    evidence_lines: int = Field(100, ge=0, description="worker log lines kept as evidence before acting")


def load(path: str) -> dict[str, dict[str, Any]]:
    """The quarantine: UUID → {gpu, reason, at, run}. A missing file is an empty quarantine."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object of quarantined GPUs")
    return data


def save(path: str, quarantine: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(quarantine, indent=2, sort_keys=True) + "\n")


def visible(inventory: Mapping[str, str], quarantined: set[str]) -> list[str]:
    """The UUIDs the worker may use, in GPU index order."""
    by_index = sorted(inventory.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 1 << 30)
    return [uuid for _, uuid in by_index if uuid not in quarantined]


def release(settings: GpuQuarantineSettings, env_file: str | None, uuid: str) -> str:
    """On-call gives a GPU back: off the quarantine and back into the env var (the worker uses it from its
    next start). Returns what was done, for the CLI."""
    quarantine = load(settings.quarantine_file)
    entry = quarantine.pop(uuid, None)
    if entry is None:
        known = ", ".join(sorted(quarantine)) or "none"
        raise KeyError(f"{uuid} is not quarantined (quarantined: {known})")
    save(settings.quarantine_file, quarantine)
    if env_file:
        current = [u for u in read_env(env_file).get(settings.env_var, "").split(",") if u]
        # Nothing quarantined any more: drop the variable, so the worker sees every GPU again.
        value = ",".join([*current, uuid]) if quarantine else None
        write_env(env_file, {settings.env_var: value})
    return f"released GPU {entry.get('gpu', '?')} ({uuid}); restart the worker to use it"


@register_playbook("gpu_quarantine", GpuQuarantineSettings)
class GpuQuarantine:
    name = "gpu_quarantine"

    def __init__(self, settings: GpuQuarantineSettings, ctx: PlaybookContext) -> None:
        self.settings = settings
        self.ctx = ctx

    def subject(self, request: Request) -> tuple[str, str] | None:
        """(index, UUID) of the GPU the request is about: labels first, then the component's name."""
        inventory = self.ctx.inventory()
        uuid = request.labels.get("uuid", "")
        gpu = request.labels.get("gpu", "")
        if not gpu and request.component and (m := _GPU_COMPONENT.match(request.component)):
            gpu = m.group(1)
        if not uuid and gpu in inventory:
            uuid = inventory[gpu]
        if uuid and not gpu:
            gpu = next((i for i, u in inventory.items() if u == uuid), "")
        return (gpu, uuid) if uuid else None

    def still_needed(self, request: Request) -> Check:
        subject = self.subject(request)
        if subject is None:
            return Check(False, "the trigger names no GPU of this node's inventory (labels gpu/uuid)")
        gpu, uuid = subject
        if uuid in load(self.settings.quarantine_file):
            return Check(False, f"GPU {gpu} ({uuid}) is already quarantined")
        return Check(True, f"GPU {gpu} ({uuid}): {request.reason}")

    def plan(self, request: Request) -> Plan:
        s, env_file = self.settings, self.ctx.target.env_file
        subject = self.subject(request)
        if subject is None:
            return Plan(refusal="no GPU to quarantine: the request names none of this node's GPUs")
        if env_file is None:
            return Plan(refusal=f"target {self.ctx.target.name} has no env_file for {s.env_var}")
        gpu, uuid = subject
        quarantine = load(s.quarantine_file)
        keep = visible(self.ctx.inventory(), {*quarantine, uuid})
        if len(keep) < s.min_gpus:
            return Plan(
                refusal=f"quarantining GPU {gpu} would leave {len(keep)} GPU(s), minimum {s.min_gpus}: "
                "needs a person (inspect or replace the GPU)"
            )
        entry = {"gpu": gpu, "reason": request.reason, "at": time.time(), "run": request.run_id}

        def persist() -> None:
            save(s.quarantine_file, {**load(s.quarantine_file), uuid: entry})
            write_env(env_file, {s.env_var: ",".join(keep)})

        step = Step(
            "quarantine",
            f"GPU {gpu} ({uuid}) out of service: {s.env_var}={','.join(keep)} in {env_file}",
            persist,
        )
        return Plan((step, *restart_steps(self.ctx, f"without GPU {gpu}")))

    def verify(self) -> Check:
        env = read_env(self.ctx.target.env_file).get(self.settings.env_var, "")
        if not self.ctx.target.ready(timeout=5.0):
            return Check(False, f"{self.ctx.target.name} is not ready without the quarantined GPU(s)")
        return Check(True, f"{self.ctx.target.name} serves on {self.settings.env_var}={env}")

    def evidence(self) -> Mapping[str, Any]:
        return {
            "inventory": dict(self.ctx.inventory()),
            "quarantine": load(self.settings.quarantine_file),
            "env": read_env(self.ctx.target.env_file),
            "log_tail": self.ctx.target.log_tail(self.settings.evidence_lines),
        }

    @staticmethod
    def standing(settings: GpuQuarantineSettings) -> list[Sample]:
        """The quarantined GPUs, from the file: exported whether the playbook is enabled or not."""
        try:
            quarantine = load(settings.quarantine_file)
        except (OSError, ValueError):
            return []  # a scrape never fails on this; the next run reports the broken file
        return [
            ("gpuwarden_remediation_gpu_quarantined", 1.0, {"gpu": str(e.get("gpu", "")), "uuid": uuid})
            for uuid, e in sorted(quarantine.items())
        ]
