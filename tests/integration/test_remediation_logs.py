"""log_rotation under a writer at 10k lines/s: rotated on a schedule by size, compressed, and every line
written is found exactly once across the log and its rotated files."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from gpuwarden.remediations.audit import read
from gpuwarden.remediations.engine import Engine
from gpuwarden.remediations.section import RemediationSettings
from tests.integration.remediation_support import wait_for

pytestmark = pytest.mark.integration

WRITER = Path(__file__).parents[1] / "fixtures" / "remediation" / "log_writer.py"


def lines_of(log: Path) -> list[int]:
    out: list[int] = []
    for path in sorted(log.parent.glob(log.name + "*")):
        if path.suffix == ".gz":
            text = gzip.decompress(path.read_bytes()).decode()
        elif path.name == log.name or path.suffix.lstrip(".").isdigit():
            text = path.read_text()
        else:
            continue  # the count file, a temporary file
        out += [int(line) for line in text.splitlines()]
    return out


@pytest.mark.parametrize("reopen", ["signal", "watch"])
def test_rotating_under_a_writer_at_10k_lines_per_second_loses_no_line(tmp_path: Path, reopen: str) -> None:
    log, count = tmp_path / "logs" / "worker.log", tmp_path / "count.json"
    log.parent.mkdir()
    cfg = RemediationSettings.model_validate(
        {
            "enabled": True,
            "audit_log": str(tmp_path / "audit" / "audit.jsonl"),
            "startup_grace_s": 0,
            "targets": {
                "writer": {
                    "kind": "process",
                    "argv": [
                        sys.executable,
                        str(WRITER),
                        str(log),
                        str(count),
                        "--reopen",
                        reopen,
                        "--rate",
                        "10000",
                        "--seconds",
                        "3",
                        "--reopen-delay",
                        "0.05",
                    ],
                }  # fmt: skip
            },
            "playbooks": {
                "log_rotation": {
                    "enabled": True,
                    "target": "writer",
                    "files": [str(log)],
                    "max_bytes": 30_000,
                    "keep": 1000,
                    "reopen": reopen,
                    "reopen_timeout_s": 5,
                    "state_file": str(tmp_path / "rotation.json"),
                    "triggers": [{"kind": "schedule", "every_s": 0.25}],
                    "rails": {"max_attempts": 1000, "grace_s": 0, "cooldown_s": 0, "backoff_initial_s": 0},
                }
            },
        }  # fmt: skip
    )
    engine = Engine(cfg).start()
    try:
        wait_for(count.exists, timeout=30, what="the writer finished")

        # Let a rotation that is under way end: every run that started has its outcome.
        def settled() -> bool:
            records = list(read(cfg.audit_log))
            return sum(r["step"] == "trigger" for r in records) == sum(
                r["step"] == "outcome" for r in records
            )

        wait_for(settled, timeout=15, what="the last rotation ended")
    finally:
        engine.stop(stop_targets=True)
    written = json.loads(count.read_text())
    outcomes = [r for r in read(cfg.audit_log) if r["step"] == "outcome"]

    assert len(outcomes) >= 3, f"only {len(outcomes)} rotations: the test rotated too little to mean much"
    assert {r["result"] for r in outcomes} == {"succeeded"}, outcomes
    assert list(log.parent.glob("worker.log.*.gz")), "nothing was compressed"
    found = sorted(lines_of(log))
    assert len(found) == written["lines"], f"{written['lines'] - len(found)} lines lost ({written})"
    assert found == list(range(written["lines"])), "a line is missing or duplicated"
