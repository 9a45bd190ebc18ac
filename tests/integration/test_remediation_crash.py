"""SIGKILL the engine at random points of 100 remediation runs: the audit log stays consistent."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from gpuwarden.remediations.audit import RESULTS, AuditLog

pytestmark = pytest.mark.integration

RUNS = 100


def test_sigkill_at_random_points_of_100_runs_leaves_every_run_terminal_or_interrupted(
    tmp_path: Path,
) -> None:
    rng = random.Random(1234)  # fixed seed: a failure can be replayed
    audit = tmp_path / "audit.jsonl"
    kills = 0
    try:
        while kills < 200 and sum(1 for _ in _outcomes(audit)) < RUNS:
            driver = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.remediation_driver", str(tmp_path)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert driver.stdout is not None and driver.stdout.readline() == "started\n"
            time.sleep(rng.uniform(0.05, 0.8))
            driver.send_signal(signal.SIGKILL)
            driver.wait(10)
            kills += 1
        records = AuditLog(audit).recover()  # what the next start does
    finally:
        _kill_left_worker(tmp_path / "worker.pid")

    text = audit.read_text()
    assert text.endswith("\n")
    on_disk = [json.loads(line) for line in text.splitlines()]  # every line parses
    assert on_disk == records
    by_run: dict[str, list[dict[str, object]]] = defaultdict(list)
    for r in on_disk:
        by_run[str(r["run"])].append(r)
    results: Counter[str] = Counter()
    for run, steps in by_run.items():
        names = [s["step"] for s in steps]
        assert names.count("outcome") == 1 and names[-1] == "outcome", (run, names)
        assert names.count("attempt") <= 1, (run, names)  # an attempt is never repeated under one run id
        results[str(steps[-1]["result"])] += 1
    assert set(results) <= set(RESULTS)
    assert sum(results.values()) >= RUNS
    assert results["interrupted"] > 0 and results["succeeded"] > 0, results
    print(f"{kills} kills, runs by result: {dict(results)}")


def _outcomes(audit: Path) -> list[str]:
    if not audit.exists():
        return []
    return [line for line in audit.read_text().splitlines() if '"step": "outcome"' in line]


def _kill_left_worker(pid_file: Path) -> None:
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
