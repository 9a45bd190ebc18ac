"""Generated documentation is committed and current."""

from __future__ import annotations

from pathlib import Path

from gpuwarden import docgen

ROOT = Path(__file__).resolve().parents[2]


def test_the_configuration_reference_is_generated_from_the_current_schema() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == docgen.render(), "stale: run `make generate` and commit docs/configuration.md"


def test_every_setting_has_a_description() -> None:
    text = docgen.render()
    missing = [line for line in text.splitlines() if line.startswith("| `") and line.endswith("|  |")]
    assert missing == []
