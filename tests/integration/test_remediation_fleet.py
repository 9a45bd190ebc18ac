"""The fleet budget gates disruptive steps, on a real ZooKeeper ensemble: busy and partitioned nodes do
not act (fail closed), a playbook listed fail-open does, and says so in the audit log; a lease lost
after the grant stops the run before its first change."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpuwarden.fleet import BudgetSettings, FleetBudget, FleetClient, FleetSettings
from gpuwarden.fleet.budget import Lease
from gpuwarden.remediations.audit import read
from gpuwarden.remediations.engine import Engine
from gpuwarden.remediations.request import Request
from gpuwarden.remediations.section import RemediationSettings
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


class LoseAfterGrant:
    """The real FleetBudget; right after ZooKeeper grants the lease, the test stops the ZooKeeper server
    this node's session uses and waits until the lease reports the loss: the window between the grant
    and the first disruptive step, made certain instead of lucky."""

    def __init__(self, budget: FleetBudget, lose: Callable[[], object]) -> None:
        self.budget = budget
        self.lose = lose

    @property
    def held(self) -> bool:
        return self.budget.held

    def acquire(self, playbook: str, timeout: float | None = None) -> Lease:
        lease = self.budget.acquire(playbook, timeout)
        self.lose()
        wait_for(lease.lost.is_set, timeout=15, what="the lease reports the lost session")
        return lease


def test_a_lease_lost_after_the_grant_stops_the_run_before_anything_is_changed_or_stopped(
    tmp_path: Path, make_ensemble: Callable[..., Ensemble], cleanup: list[object]
) -> None:
    ensemble = make_ensemble()
    member = ensemble.members[0]
    budget = fleet(ensemble, "node-lost", BudgetSettings(acquire_timeout=5), cleanup, hosts=member.address)
    wait_for(lambda: budget.fleet.connected, timeout=20, what="connected")
    cfg = driver_settings(tmp_path)
    quarantine = tmp_path / "quarantine.json"
    env_file = tmp_path / "worker.env"
    target = cfg.targets["worker"].model_copy(update={"env_file": str(env_file)})
    cfg = RemediationSettings.model_validate(
        {
            **cfg.model_dump(),
            "targets": {"worker": target.model_dump()},
            "playbooks": {
                "gpu_quarantine": {
                    "enabled": True, "quarantine_file": str(quarantine),
                    "rails": {"grace_s": 0, "cooldown_s": 0, "backoff_initial_s": 0},
                }
            },
        }
    )  # fmt: skip
    inventory = {"0": "GPU-aaaa", "1": "GPU-bbbb"}
    losing = LoseAfterGrant(budget, lambda: ensemble.kill(member))
    engine = Engine(cfg, budget=lambda: losing, inventory=lambda: inventory).start()
    cleanup.append(engine)
    worker = engine.targets["worker"]
    assert isinstance(worker, ProcessTarget) and worker.proc is not None
    before = worker.proc.pid

    engine.submit(Request("gpu_quarantine", "manual", "user:test", "XID 79", labels={"gpu": "1"}))
    outcome = wait_for(
        lambda: [r for r in read(engine.audit.path) if r["step"] == "outcome"], timeout=60, what="outcome"
    )[0]

    assert outcome["result"] == "failed"
    assert str(outcome["reason"]).startswith("fleet lease lost"), outcome
    assert "before quarantine" in str(outcome["reason"])
    assert worker.proc.pid == before and worker.alive(), "the worker was stopped without a lease"
    assert not quarantine.exists() and not env_file.exists(), "the quarantine was written without a lease"
    actions = [r for r in read(engine.audit.path) if r["step"] == "action"]
    assert actions == []
