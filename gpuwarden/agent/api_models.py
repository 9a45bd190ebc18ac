"""Bodies of the manual /v1 requests, validated strictly: unknown keys and wrong types are a 400."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from gpuwarden.config import format_errors

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1024)]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")]
Value = Annotated[str, StringConstraints(max_length=256)] | int | float | bool


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RemediationBody(_Body):
    reason: Reason = Field(description="why, in the operator's words; goes into the audit log")
    dry_run: bool = Field(False, description="plan and record, change nothing")
    params: dict[Name, Value] = Field(
        default_factory=dict, max_length=32, description="the subject (gpu, uuid, ...), passed as labels"
    )
    target: Name | None = Field(None, description="the playbook's target; must be the one it is set up for")

    def labels(self) -> dict[str, str]:
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in self.params.items()}


class PauseBody(_Body):
    reason: Reason
    playbook: Name | None = Field(None, description="one playbook; without it, every playbook")


class ResetBody(_Body):
    reason: Reason
    playbook: Name | None = Field(
        None, description="re-arm this exhausted playbook; without it, leave the engine's storm mode"
    )


def problems(err: ValidationError, limit: int = 5) -> str:
    """A ValidationError as `key.path: reason` lines joined with '; ' (the first `limit`)."""
    lines = format_errors(err)
    more = f"; and {len(lines) - limit} more" if len(lines) > limit else ""
    return "; ".join(lines[:limit]) + more
