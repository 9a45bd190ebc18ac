"""Textfile collector: good files are re-exported, a bad file is skipped whole and reported."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from gpuwarden.agent.context import build_collector
from gpuwarden.config import AgentConfig
from gpuwarden.health import HealthResult, State
from tests.golden import exposition, split

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "textfile"


def collect(directory: Path) -> tuple[str, list[HealthResult]]:
    config = AgentConfig.model_validate(
        {"collectors": {"textfile": {"enabled": True, "directory": str(directory)}}}
    )
    metrics, health = split(build_collector("textfile", config, logging.getLogger("t")).collect())
    return exposition(metrics), health


def test_good_files_are_served_with_their_mtime(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "good" / "model.prom", tmp_path)
    os.utime(tmp_path / "model.prom", (1_700_000_000, 1_700_000_000))
    text, health = collect(tmp_path)
    assert 'inference_model_info{model="deepseek-v3",revision="a1b2c3"} 1.0' in text
    assert 'gpuwarden_textfile_mtime_seconds{file="model.prom"} 1.7e+09' in text
    assert "gpuwarden_textfile_scrape_error 0.0" in text
    assert [h.state for h in health] == [State.HEALTHY]


def test_a_file_that_does_not_parse_is_skipped_whole_and_reported(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "good" / "model.prom", tmp_path)
    (tmp_path / "broken.prom").write_text('half_written_metric{a="1" 3\n')
    text, health = collect(tmp_path)
    assert "inference_model_info" in text and "half_written_metric" not in text
    assert "gpuwarden_textfile_scrape_error 1.0" in text
    (result,) = health
    assert result.state == State.DEGRADED and "broken.prom" in result.reason


def test_a_file_may_not_impersonate_the_agents_own_series(tmp_path: Path) -> None:
    (tmp_path / "evil.prom").write_text("gpuwarden_gpu_xid_errors_total 0\n")
    text, health = collect(tmp_path)
    assert "gpuwarden_gpu_xid_errors_total" not in text
    assert "reserved" in health[0].reason


def test_a_missing_directory_is_simply_empty(tmp_path: Path) -> None:
    text, health = collect(tmp_path / "nope")
    assert "gpuwarden_textfile_scrape_error 0.0" in text
    assert [h.state for h in health] == [State.HEALTHY]
