"""The `remediation:` config section, with one `playbooks.<name>` model per registered playbook."""

from __future__ import annotations

from pydantic import Field, model_validator

import gpuwarden.remediations.playbooks  # noqa: F401  (fills the registry the schema is built from)
from gpuwarden.config_base import StrictModel, section_model
from gpuwarden.remediations.registry import PLAYBOOKS
from gpuwarden.remediations.settings import PlaybookSettings, StormSettings, TargetSettings

PlaybooksSettings = section_model(
    "PlaybooksSettings",
    {name: spec.settings for name, spec in PLAYBOOKS.items()},
    "One key per registered playbook, each with its own settings.",
)


class RemediationSettings(StrictModel):
    enabled: bool = Field(False, description="run the remediation engine")
    dry_run: bool = Field(
        False, description="shadow mode for every playbook: decide, plan, record, never act"
    )
    audit_log: str = Field(
        "/var/lib/gpuwarden/remediation/audit.jsonl",
        description="append-only JSON lines audit log (evidence files go beside it)",
    )
    queue_size: int = Field(64, ge=1, description="requests waiting to run; more are rejected and counted")
    startup_grace_s: float = Field(
        120.0, ge=0, description="after the agent starts, act on nothing for this long (it knows too little)"
    )
    storm: StormSettings = Field(default_factory=StormSettings)
    targets: dict[str, TargetSettings] = Field(
        default_factory=dict, description="where the workers run, by name (process, systemd or http)"
    )
    playbooks: PlaybooksSettings = Field(default_factory=PlaybooksSettings)  # type: ignore[valid-type]

    def playbook(self, name: str) -> PlaybookSettings:
        return getattr(self.playbooks, name)

    def enabled_playbooks(self) -> dict[str, PlaybookSettings]:
        return {n: self.playbook(n) for n in sorted(PLAYBOOKS) if self.playbook(n).enabled}

    @model_validator(mode="after")
    def _targets_exist(self) -> RemediationSettings:
        for name, settings in self.enabled_playbooks().items():
            if settings.target not in self.targets:
                known = ", ".join(sorted(self.targets)) or "none defined"
                raise ValueError(
                    f"playbooks.{name}.target: no target named {settings.target!r} in remediation.targets "
                    f"({known})"
                )
        return self
