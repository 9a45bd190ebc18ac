"""The `remediation:` section: targets, the engine's own limits, and the rails every playbook carries.

Each playbook owns a settings model derived from `PlaybookSettings` and registers it with
`@register_playbook` (registry.py); the section's `playbooks` model is built from that registry, the way
`collectors` is built from the collector registry.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from gpuwarden.config_base import StrictModel
from gpuwarden.health import State

Seconds = Annotated[float, Field(ge=0)]


class RailsSettings(StrictModel):
    """Safety rails; each one can stop a run, and the audit log names the rail that did."""

    max_attempts: int = Field(3, ge=1, description="attempts allowed per `window_s`; one more is 'exhausted'")
    window_s: float = Field(3600.0, gt=0, description="sliding window of the attempt budget, in seconds")
    cooldown_s: Seconds = Field(300.0, description="after a successful run, no new run for this long")
    backoff_initial_s: Seconds = Field(30.0, description="after a failed run, wait this long before the next")
    backoff_max_s: Seconds = Field(900.0, description="the back-off doubles per failure up to this cap")
    backoff_reset_s: float = Field(
        1800.0,
        gt=0,
        description="a target that stayed quiet this long starts again from the initial back-off",
    )
    grace_s: Seconds = Field(
        60.0, description="after the engine (re)started the target, leave it alone this long (model load)"
    )
    flap_max: int = Field(
        3, ge=1, description="a trigger that entered its bad state this many times within `flap_window_s`..."
    )
    flap_window_s: float = Field(600.0, gt=0, description="...is flapping: report it, do not act")
    step_timeout_s: float = Field(120.0, gt=0, description="deadline for one step of the plan")
    verify_timeout_s: float = Field(60.0, gt=0, description="how long verification may take to pass")


class HealthTrigger(StrictModel):
    kind: Literal["health"] = "health"
    component: str = Field(description="health component, shell-style pattern (e.g. `inference.*`)")
    states: list[State] = Field(
        default_factory=lambda: [State.UNHEALTHY], description="states that count as bad"
    )
    for_s: Seconds = Field(30.0, description="the state must be held this long before the playbook runs")


class AlertTrigger(StrictModel):
    kind: Literal["alert"] = "alert"
    alertname: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="allow-listed Alertmanager alert")


class ExitTrigger(StrictModel):
    kind: Literal["exit"] = "exit"  # the supervised process exited on its own (crash)


class ScheduleTrigger(StrictModel):
    """Ask the playbook every `every_s`; it runs only when its own check says there is work (log files
    past their size or age, a memory fraction stable long enough to step back up), so an idle schedule
    writes nothing to the audit log."""

    kind: Literal["schedule"] = "schedule"
    every_s: float = Field(gt=0, description="how often the playbook is asked whether it has work")


Trigger = Annotated[HealthTrigger | AlertTrigger | ExitTrigger | ScheduleTrigger, Field(discriminator="kind")]


class PlaybookSettings(StrictModel):
    enabled: bool = Field(False, description="run this playbook when its triggers fire")
    target: str = Field("worker", description="name of the target in `remediation.targets`")
    dry_run: bool = Field(False, description="decide and plan, record what would happen, never act")
    triggers: list[Trigger] = Field(default_factory=list, description="what starts a run (any of them)")
    rails: RailsSettings = Field(default_factory=RailsSettings)


class StormSettings(StrictModel):
    """Storm mode: many disruptive runs on one node in a short time mean the cause is bigger than any
    playbook (a bad driver, a bad deploy, a rack losing power); acting more makes it worse. The engine
    stops acting on anything and escalates until an operator resets it (`reset` of `*`)."""

    max_runs: int = Field(
        6, ge=1, description="disruptive runs (all playbooks together) within `window_s` that start a storm"
    )
    window_s: float = Field(900.0, gt=0, description="sliding window of the storm count, in seconds")


UNIT = re.compile(r"^[A-Za-z0-9:_.@-]+\.service$")


class ProcessTargetSettings(StrictModel):
    """A process the agent starts and supervises itself (machines without systemd, the tests)."""

    kind: Literal["process"] = "process"
    argv: list[str] = Field(
        min_length=1, description="program and arguments; `${VAR}` takes VAR from `env_file` (no shell)"
    )
    env_file: str | None = Field(None, description="KEY=VALUE file the playbooks persist overrides in")
    ready_url: str | None = Field(None, description="GET answering 200 when the process serves")
    log_file: str | None = Field(None, description="the process's log, for evidence (its output goes here)")
    pid_file: str | None = Field(
        None, description="where the agent records the process; a restarted agent stops the one it left"
    )
    stop_timeout_s: float = Field(10.0, gt=0, description="SIGTERM, then SIGKILL the group after this")
    start_timeout_s: float = Field(60.0, gt=0, description="how long the process may take to get ready")


class SystemdTargetSettings(StrictModel):
    """A systemd unit, restarted through `systemctl` (polkit allows the agent's user; systemd/README.md)."""

    kind: Literal["systemd"] = "systemd"
    unit: str = Field(description="unit name, e.g. `inference-worker@0.service`")
    systemctl: str = Field("systemctl", description="the systemctl program")
    env_file: str | None = Field(None, description="the unit's EnvironmentFile= the playbooks persist into")
    ready_url: str | None = Field(None, description="GET answering 200 when the service serves")
    log_file: str | None = Field(None, description="the service's log file, for evidence")
    start_timeout_s: float = Field(120.0, gt=0, description="how long the service may take to get ready")

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        if not UNIT.match(v):
            raise ValueError("must be a unit name ending in .service (letters, digits, :_.@-)")
        return v


class HttpTargetSettings(StrictModel):
    """A hook the engine POSTs `{"action": ..., "target": ...}` to (an orchestrator, a sidecar)."""

    kind: Literal["http"] = "http"
    url: str = Field(pattern=r"^https?://", description="hook URL")
    token_file: str | None = Field(None, description="file holding a bearer token for the hook")
    ready_url: str | None = Field(None, description="GET answering 200 when the worker serves")
    log_file: str | None = Field(None, description="the worker's log file, for evidence")
    env_file: str | None = Field(None, description="file the playbooks persist overrides in")
    start_timeout_s: float = Field(120.0, gt=0, description="how long the worker may take to get ready")


TargetSettings = Annotated[
    ProcessTargetSettings | SystemdTargetSettings | HttpTargetSettings, Field(discriminator="kind")
]
