"""Generated documentation is committed and current."""

from __future__ import annotations

from pathlib import Path

from gpuwarden import docgen
from gpuwarden.health import MEANING, Action, State

ROOT = Path(__file__).resolve().parents[2]


def test_the_configuration_reference_is_generated_from_the_current_schema() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == docgen.render(), "stale: run `make generate` and commit docs/configuration.md"


def test_every_setting_has_a_description() -> None:
    text = docgen.render()
    missing = [line for line in text.splitlines() if line.startswith("| `") and line.endswith("|  |")]
    assert missing == []


def test_the_operations_guide_names_every_state_and_suggested_action() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    assert [s for s in (*State, *Action) if f"`{s}`" not in text] == []


def test_the_operations_guide_gives_each_action_its_one_sentence_of_meaning() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    assert [a for a, meaning in MEANING.items() if f"| `{a}` | {meaning} |" not in text] == []
