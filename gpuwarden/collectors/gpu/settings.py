"""Settings of the GPU collector (config section `collectors.gpu`; docs/configuration.md lists them)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from gpuwarden.agent.registry import CollectorSettings
from gpuwarden.collectors.gpu.xid_table import LADDER
from gpuwarden.health import Action


class GpuSettings(CollectorSettings):
    backend: Literal["nvml", "replay"] = Field(
        "nvml", description="nvml: the real driver; replay: serve a recording made by `gpuwarden gpu record`"
    )
    replay_file: str | None = Field(None, description="the recording to serve when backend is replay")
    call_timeout: float = Field(
        2.0,
        gt=0,
        description=(
            "seconds one cycle's NVML calls (all GPUs) may take, less than timeout;"
            " past it: driver_unresponsive"
        ),
    )
    slow_interval: float = Field(
        60.0,
        gt=0,
        description="seconds between reads of the expensive counters (energy, PCIe throughput, NVLink)",
    )
    expected_gpus: int = Field(
        0, ge=0, description="GPUs this node must have; fewer is UNHEALTHY (0: no check)"
    )
    thermal_margin_min_celsius: float = Field(
        5.0, description="below this many degrees from thermal slowdown a GPU is DEGRADED"
    )
    ecc_storm_errors: int = Field(
        1000, gt=0, description="corrected ECC errors between two cycles that count as an ECC storm"
    )
    pcie_replay_burst: int = Field(
        100, gt=0, description="PCIe replays between two reads (every slow_interval) that make a GPU DEGRADED"
    )
    xid_actions: dict[int, Action] = Field(
        default_factory=dict,
        description="per-XID action overrides, e.g. {94: none}; defaults follow NVIDIA's catalog",
    )
    xid_lookback: float = Field(86400.0, gt=0, description="seconds an XID keeps a GPU's health from HEALTHY")
    xid_escalate_after: int = Field(
        3,
        ge=1,
        description="this many faults of one XID within xid_escalate_window escalate its action one step",
    )
    xid_escalate_window: float = Field(
        86400.0, gt=0, description="window for counting XID repeats, in seconds"
    )
    # A hung GPU repeats its XID whenever something calls into it (gpud's XID 119 capture: three lines
    # 6 s apart, then one every 3 minutes); five quiet minutes end the fault.
    xid_burst_window: float = Field(
        300.0,
        gt=0,
        description="reports of the same XID on the same GPU less than this many seconds apart are one fault",
    )
    xid_dedup_window: float = Field(
        10.0,
        ge=0,
        description="the same XID from NVML and the kernel log within this many seconds counts once",
    )
    nvml_events: bool = Field(True, description="watch NVML XID events on a dedicated thread")
    kmsg: bool = Field(True, description="read XIDs from the kernel log (/dev/kmsg) too")

    @field_validator("xid_actions")
    @classmethod
    def _actions_on_the_ladder(cls, actions: dict[int, Action]) -> dict[int, Action]:
        # The XID verdict ranks and escalates actions along LADDER; any other action has no rung there.
        for xid, action in sorted(actions.items()):
            if action not in LADDER:
                allowed = ", ".join(str(a) for a in LADDER)
                raise ValueError(f"XID {xid}: {action} is not an XID action (one of {allowed})")
        return actions

    @model_validator(mode="after")
    def _consistent(self) -> GpuSettings:
        if self.backend == "replay" and not self.replay_file:
            raise ValueError("replay_file is required when backend is replay")
        if self.call_timeout >= self.timeout:
            # Past `timeout` the runner abandons the whole collection: a hung driver would show as a
            # collector timeout (UNKNOWN, kernel-log XIDs dropped), never as driver_unresponsive.
            raise ValueError(
                f"call_timeout ({self.call_timeout:g}) must be less than timeout ({self.timeout:g})"
            )
        return self
