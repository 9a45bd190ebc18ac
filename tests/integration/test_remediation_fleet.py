"""The fleet budget gates disruptive steps, on a real ZooKeeper ensemble: busy and partitioned nodes do
not act (fail closed), a playbook listed fail-open does, and says so in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuwarden.fleet import BudgetSettings, FleetBudget, FleetClient, FleetSettings
from gpuwarden.remediations.audit import read
from gpuwarden.remediations.engine import Engine
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.targets import ProcessTarget
from tests.integration.remediation_driver import settings as driver_settings
from tests.integration.remediation_support import wait_for
from tests.integration.zk_ensemble import Ensemble
from tests.integration.zk_proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def cleanup() -> Iterator[list[object]]:
    things: list[object] = []
    yield things
    for thing in reversed(things):
        if isinstance(thing, Engine):
            thing.stop(stop_targets=True)
        elif isinstance(thing, FleetClient):
            thing.stop()
        elif isinstance(thing, TcpProxy):
            thing.close()


def fleet(
    ensemble: Ensemble, node: str, budget: BudgetSettings, cleanup: list[object], hosts: str | None = None
) -> FleetBudget:
    cfg = FleetSettings(enabled=True, hosts=ensemble.addresses, cluster="remediation-fleet", node=node,
                        session_timeout=2, budget=budget)  # fmt: skip
    client = FleetClient(cfg, hosts=hosts).start()
    cleanup.append(client)
    return FleetBudget(client, budget)


def run_once(
    tmp: Path, budget: FleetBudget, cleanup: list[object]
) -> tuple[dict[str, object], list[dict[str, object]], bool]:
    """One manual worker_restart on a fresh engine; (outcome, lease records, whether the target restarted)."""
    engine = Engine(driver_settings(tmp), budget=lambda: budget).start()
    cleanup.append(engine)
    target = engine.targets["worker"]
    assert isinstance(target, ProcessTarget) and target.proc is not None
    before = target.proc.pid
    engine.submit(Request("worker_restart", "manual", "user:test", "restart"))
    outcome = wait_for(
        lambda: [r for r in read(engine.audit.path) if r["step"] == "outcome"], what="outcome"
    )[0]
    leases = [r for r in read(engine.audit.path) if r["step"] == "lease"]
    return outcome, leases, target.proc.pid != before


def test_a_node_waits_its_turn_when_another_node_holds_the_fleet_budget(
    tmp_path: Path, zk_ensemble: Ensemble, cleanup: list[object]
) -> None:
    budget = BudgetSettings(max_concurrent=1, acquire_timeout=1)
    held = fleet(zk_ensemble, "node-a", budget, cleanup).acquire("memory_fraction")
    outcome, leases, restarted = run_once(tmp_path, fleet(zk_ensemble, "node-b", budget, cleanup), cleanup)
    assert (outcome["result"], restarted) == ("denied", False)
    assert "busy" in str(leases[0]["reason"]) and "node-a (memory_fraction)" in str(leases[0]["reason"])
    held.release()
    outcome, _, restarted = run_once(
        tmp_path / "again", fleet(zk_ensemble, "node-c", budget, cleanup), cleanup
    )
    assert (outcome["result"], restarted) == ("succeeded", True)


@pytest.mark.parametrize("fail_open", [False, True])
def test_a_node_cut_off_from_zookeeper_fails_closed_unless_the_playbook_is_listed_fail_open(
    tmp_path: Path, zk_ensemble: Ensemble, cleanup: list[object], fail_open: bool
) -> None:
    leader = zk_ensemble.leader()
    assert leader is not None
    proxy = TcpProxy(("127.0.0.1", leader.client_port))
    cleanup.append(proxy)
    budget = BudgetSettings(acquire_timeout=1, fail_open_playbooks=["worker_restart"] if fail_open else [])
    cut_off = fleet(zk_ensemble, "node-cut", budget, cleanup, hosts=proxy.address)
    proxy.cut()
    wait_for(lambda: not cut_off.fleet.connected, timeout=10, what="disconnected")
    outcome, leases, restarted = run_once(tmp_path, cut_off, cleanup)
    if fail_open:
        assert (outcome["result"], restarted) == ("succeeded", True)
        assert leases[0]["fail_open"] is True and "failing open" in str(leases[0]["reason"])
    else:
        assert (outcome["result"], restarted) == ("denied", False)
        assert "failing closed: ZooKeeper unreachable" in str(leases[0]["reason"])
