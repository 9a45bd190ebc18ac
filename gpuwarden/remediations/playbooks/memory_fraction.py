"""`memory_fraction`: after CUDA out-of-memory, lower the worker's GPU memory fraction one step (0.9 →
0.8 → ... down to a floor), persist it where the worker reads it, restart, verify. With `step_up_after_s`
and a `schedule` trigger, raise it one step again once the fraction has been left alone that long (the
worker has served without OOM since: an OOM would have lowered it again and reset the clock).

The fraction is persisted in the target's env file as `env_var` (atomically); the worker's argv or unit
maps it to its flag: the reference worker's `--memory-fraction ${GPUWARDEN_MEMORY_FRACTION}`, vLLM's
`--gpu-memory-utilization`, PyTorch's `torch.cuda.set_per_process_memory_fraction`. Too low also fails
(vLLM: "No available memory for the cache blocks"), so the floor is a refusal that escalates, not a
further step. Runbook: docs/runbooks/memory_fraction.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from gpuwarden.remediations.playbooks.worker_restart import restart_steps
from gpuwarden.remediations.registry import Check, Plan, PlaybookContext, Step, register_playbook
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.settings import PlaybookSettings
from gpuwarden.remediations.targets import read_env, write_env

OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError")


class MemoryFractionSettings(PlaybookSettings):
    env_var: str = Field(
        "GPUWARDEN_MEMORY_FRACTION", pattern=r"^[A-Z_][A-Z0-9_]*$", description="key in the target's env file"
    )
    initial: float = Field(0.9, gt=0, le=1, description="the fraction when the env file has none yet")
    step: float = Field(0.1, gt=0, lt=1, description="how much one run lowers it")
    floor: float = Field(0.5, gt=0, le=1, description="never below this: at the floor the playbook escalates")
    evidence_lines: int = Field(100, ge=0, description="worker log lines kept as evidence before acting")
    step_up_after_s: float | None = Field(
        None,
        gt=0,
        description="raise the fraction one step after it stayed unchanged this long (asked by a "
        "`schedule` trigger); unset: a lowered fraction stays until a person raises it",
    )

    @model_validator(mode="after")
    def _floor(self) -> MemoryFractionSettings:
        if self.floor > self.initial:
            raise ValueError("floor must not be above initial")
        return self


@register_playbook("memory_fraction", MemoryFractionSettings)
class MemoryFraction:
    name = "memory_fraction"

    def __init__(self, settings: MemoryFractionSettings, ctx: PlaybookContext) -> None:
        self.settings = settings
        self.ctx = ctx

    def current(self) -> float:
        value = read_env(self.ctx.target.env_file).get(self.settings.env_var)
        try:
            return float(value) if value is not None else self.settings.initial
        except ValueError:
            return self.settings.initial

    def stable_for(self) -> float:
        """Seconds since the fraction was last changed (the env file's modification time)."""
        env_file = self.ctx.target.env_file
        if env_file is None or not os.path.exists(env_file):
            return 0.0
        return time.time() - os.stat(env_file).st_mtime

    def still_needed(self, request: Request) -> Check:
        if request.source == "schedule":
            s, now = self.settings, self.current()
            if s.step_up_after_s is None:
                return Check(False, "stepping back up is off (no step_up_after_s)")
            if now >= s.initial - 1e-9:
                return Check(False, f"memory fraction is at its initial {s.initial:g}")
            stable = self.stable_for()
            if stable < s.step_up_after_s:
                return Check(
                    False, f"fraction {now:g} set {stable:.0f}s ago (step up after {s.step_up_after_s:g}s)"
                )
            if not self.ctx.target.ready(timeout=2.0):
                return Check(False, f"{self.ctx.target.name} is not ready: not the time to step up")
            return Check(True, f"fraction {now:g} stable for {stable:.0f}s: step back up")
        if request.source != "exit":
            return Check(True, f"{request.source} request: {request.reason}")
        tail = self.ctx.target.log_tail(self.settings.evidence_lines)
        if any(marker in line for line in tail for marker in OOM_MARKERS):
            return Check(True, "the worker's log shows CUDA out of memory")
        return Check(False, "the worker's log shows no CUDA out-of-memory line")

    def plan(self, request: Request) -> Plan:
        s, env_file = self.settings, self.ctx.target.env_file
        if env_file is None:
            return Plan(refusal=f"target {self.ctx.target.name} has no env_file to persist the fraction in")
        now = self.current()
        if request.source == "schedule":
            up = round(min(s.initial, now + s.step), 3)
            persist = Step(
                "persist", f"{s.env_var}={up:g} in {env_file} (was {now:g}; stable)",
                lambda: write_env(env_file, {s.env_var: f"{up:g}"}),
            )  # fmt: skip
            return Plan((persist, *restart_steps(self.ctx, f"memory fraction {now:g} → {up:g}")))
        new = round(max(s.floor, now - s.step), 3)
        if now <= s.floor + 1e-9:
            return Plan(refusal=f"memory fraction already at its floor {s.floor:g}: needs a person")
        persist = Step(
            "persist", f"{s.env_var}={new:g} in {env_file} (was {now:g})",
            lambda: write_env(env_file, {s.env_var: f"{new:g}"}),
        )  # fmt: skip
        return Plan((persist, *restart_steps(self.ctx, f"memory fraction {now:g} → {new:g}")))

    def verify(self) -> Check:
        if self.ctx.target.ready(timeout=5.0):
            return Check(True, f"{self.ctx.target.name} is ready with memory fraction {self.current():g}")
        return Check(False, f"{self.ctx.target.name} is not ready after lowering the memory fraction")

    def evidence(self) -> Mapping[str, Any]:
        return {
            "memory_fraction": self.current(),
            "log_tail": self.ctx.target.log_tail(self.settings.evidence_lines),
        }
