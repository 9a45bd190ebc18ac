"""`gpuwarden fleet hold`: a rolling upgrade run on every node at once takes the fleet budget's slots one
node at a time (real ZooKeeper ensemble; `fleet.budget.max_concurrent` is 1 by default)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.zk_ensemble import Ensemble

pytestmark = pytest.mark.integration


def hold(
    ensemble: Ensemble, cluster: str, node: str, *command: str, wait: float = 30
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gpuwarden", "fleet", "hold", "--hosts", ensemble.hosts, "--cluster", cluster,
         "--node", node, "--reason", "upgrade to 0.1.1", "--wait", str(wait), "--", *command],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_two_nodes_upgrading_at_once_take_the_budget_in_turn(zk_ensemble: Ensemble, tmp_path: Path) -> None:
    log = tmp_path / "log"
    step = [sys.executable, "-c", f"import sys,time; open({str(log)!r},'a').write(sys.argv[1]+' start\\n'); "
            f"time.sleep(2); open({str(log)!r},'a').write(sys.argv[1]+' end\\n')"]  # fmt: skip
    first = hold(zk_ensemble, "hold-turns", "node-a", *step, "a")
    time.sleep(1.0)
    second = hold(zk_ensemble, "hold-turns", "node-b", *step, "b")
    assert first.wait(30) == 0, first.stderr.read() if first.stderr else ""
    assert second.wait(30) == 0, second.stderr.read() if second.stderr else ""
    # Never two nodes inside at once: each start is followed by its own end.
    assert log.read_text().split("\n")[:4] == ["a start", "a end", "b start", "b end"]


def test_a_node_that_cannot_get_a_slot_in_time_exits_75_without_running(
    zk_ensemble: Ensemble, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    busy = hold(zk_ensemble, "hold-full", "node-a", sys.executable, "-c", "import time; time.sleep(6)")
    time.sleep(1.5)
    late = hold(zk_ensemble, "hold-full", "node-b", "touch", str(marker), wait=1)
    assert late.wait(30) == 75
    assert "no fleet budget for node-b" in (late.stderr.read() if late.stderr else "")
    assert not marker.exists()
    assert busy.wait(30) == 0


def test_the_commands_exit_code_is_the_holds_and_the_slot_is_free_after_it(zk_ensemble: Ensemble) -> None:
    assert hold(zk_ensemble, "hold-rc", "node-a", "false").wait(30) == 1
    assert hold(zk_ensemble, "hold-rc", "node-b", "true", wait=2).wait(30) == 0
