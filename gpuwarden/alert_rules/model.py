"""Rule values and their rendering to Prometheus rule-file dictionaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gpuwarden.alert_rules.mixin import Mixin

Severity = Literal["critical", "warning", "info"]


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: Severity
    summary: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)  # e.g. playbook; never a templated $value
    keep_firing_for: str = ""

    def render(self, mixin: Mixin) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr, "for": self.for_}
        if self.keep_firing_for:
            rule["keep_firing_for"] = self.keep_firing_for
        rule["labels"] = {"severity": self.severity, **self.labels}
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": mixin.runbook(self.name),
        }
        return rule


@dataclass(frozen=True)
class Record:
    record: str
    expr: str

    def render(self, mixin: Mixin) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr}


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Alert | Record, ...]
    interval: str = ""

    def render(self, mixin: Mixin) -> dict[str, Any]:
        group: dict[str, Any] = {"name": self.name}
        if self.interval:
            group["interval"] = self.interval
        group["rules"] = [r.render(mixin) for r in self.rules]
        return group

    def alerts(self) -> list[Alert]:
        return [r for r in self.rules if isinstance(r, Alert)]
