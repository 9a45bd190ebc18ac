"""Every alert and every playbook has a runbook page with the sections on-call reads at night."""

from __future__ import annotations

from pathlib import Path

from gpuwarden.alert_rules import build
from gpuwarden.alert_rules.mixin import Mixin

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
ALERT_SECTIONS = (
    "## What it means",
    "## How to confirm",
    "## What the agent does by itself",
    "## What on-call does",
    "## When to escalate",
)
PLAYBOOKS = ("scale_signal", "worker_restart", "memory_fraction", "log_rotation", "gpu_quarantine")


def test_every_alert_page_has_every_section_and_the_alert_severity() -> None:
    for alert in build.alerts(Mixin()):
        text = (RUNBOOKS / f"{alert.name}.md").read_text()
        assert text.startswith(f"# {alert.name}\n"), alert.name
        assert f"Severity **{alert.severity}**" in text, alert.name
        assert all(section in text for section in ALERT_SECTIONS), alert.name


def test_every_playbook_has_a_page_and_no_page_is_orphaned() -> None:
    expected = {f"{a.name}.md" for a in build.alerts(Mixin())} | {f"{p}.md" for p in PLAYBOOKS}
    assert {p.name for p in RUNBOOKS.glob("*.md")} - {"README.md"} == expected
    for playbook in PLAYBOOKS:
        assert (RUNBOOKS / f"{playbook}.md").read_text().startswith(f"# Playbook: {playbook}\n")


def test_runbooks_name_the_current_commands() -> None:
    text = "".join(p.read_text() for p in RUNBOOKS.glob("*.md"))
    for command in ("gpuwarden zookeeper check", "gpuwarden doctor", "gpuwarden runs"):
        assert command in text
    assert "zk-check" not in text
