"""`worker_restart`: a hung, crashed or failing worker is stopped (SIGTERM, SIGKILL after a timeout),
started, and must answer its readiness check again. Runbook: docs/runbooks/worker_restart.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from gpuwarden.remediations.registry import Check, Plan, PlaybookContext, Step, register_playbook
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.settings import PlaybookSettings
from gpuwarden.remediations.targets import wait_ready


class WorkerRestartSettings(PlaybookSettings):
    evidence_lines: int = Field(100, ge=0, description="worker log lines kept as evidence before acting")


def restart_steps(ctx: PlaybookContext, why: str) -> tuple[Step, ...]:
    """stop → start → wait until ready: what every playbook that restarts the worker does."""
    target = ctx.target
    timeout = getattr(getattr(target, "settings", None), "start_timeout_s", 60.0)
    return (
        Step(
            "stop", f"stop {target.name} ({why}); killed if it ignores SIGTERM", target.stop, disruptive=True
        ),
        Step("start", f"start {target.name}", target.start),
        Step(
            "ready",
            f"wait up to {timeout:g}s for {target.name} to be ready",
            lambda: wait_ready(target, timeout),
        ),
    )


@register_playbook("worker_restart", WorkerRestartSettings)
class WorkerRestart:
    name = "worker_restart"

    def __init__(self, settings: WorkerRestartSettings, ctx: PlaybookContext) -> None:
        self.settings = settings
        self.ctx = ctx

    def still_needed(self, request: Request) -> Check:
        if request.source in ("manual", "exit") or request.component is not None:
            return Check(True, f"{request.source} request: {request.reason}")
        if self.ctx.target.ready(timeout=2.0):  # an alert about a worker that answers again: leave it
            return Check(False, f"{self.ctx.target.name} answers its readiness check")
        return Check(True, f"{self.ctx.target.name} does not answer its readiness check")

    def plan(self, request: Request) -> Plan:
        return Plan(restart_steps(self.ctx, request.reason))

    def verify(self) -> Check:
        if self.ctx.target.ready(timeout=5.0):
            return Check(True, f"{self.ctx.target.name} is ready")
        return Check(False, f"{self.ctx.target.name} is not ready after the restart")

    def evidence(self) -> Mapping[str, Any]:
        return {"log_tail": self.ctx.target.log_tail(self.settings.evidence_lines)}
