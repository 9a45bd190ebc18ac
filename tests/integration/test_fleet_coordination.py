"""Fleet coordination on a real ZooKeeper ensemble: registration, session expiry, the remediation budget,
a partitioned agent failing closed, and leader election."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from kazoo.client import KazooClient

from gpuwarden.fleet import (
    BudgetDenied,
    BudgetSettings,
    FleetBudget,
    FleetClient,
    FleetLeader,
    FleetMember,
    FleetSettings,
    Registration,
    list_agents,
)
from tests.integration.zk_ensemble import Ensemble
from tests.integration.zk_proxy import TcpProxy

pytestmark = pytest.mark.integration

Agent = Callable[..., FleetClient]


@pytest.fixture
def agent(zk_ensemble: Ensemble, request: pytest.FixtureRequest) -> Iterator[Agent]:
    """Start fleet clients in a cluster of this test's own (so tests do not see each other's agents)."""
    started: list[FleetClient] = []
    cluster = request.node.name[:60].replace("[", "-").replace("]", "")

    def make(node: str, hosts: str | None = None, **settings: object) -> FleetClient:
        fleet = FleetSettings(
            enabled=True,
            hosts=zk_ensemble.addresses,
            cluster=cluster,
            node=node,
            session_timeout=2,
            **settings,
        )
        client = FleetClient(fleet, hosts=hosts).start()
        started.append(client)
        return client

    yield make
    for client in started:
        client.stop()


def wait_for(condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)


def expire_session(zk_ensemble: Ensemble, fleet: FleetClient) -> None:
    """Kazoo's own harness trick: a second client takes over the session and closes it, so ZooKeeper
    expires it exactly as it would after a long partition."""
    session_id, password = fleet.zk.client_id
    thief = KazooClient(hosts=zk_ensemble.hosts, client_id=(session_id, password), timeout=2)
    thief.start()
    thief.stop()
    thief.close()


def test_an_agent_registers_with_its_version_gpus_and_health_and_fleet_ls_shows_it(
    agent: Agent, zk_ensemble: Ensemble
) -> None:
    fleet = agent("gpu-node-1")
    info = {"version": "0.1.0", "gpus": [{"index": 0, "uuid": "GPU-1"}], "health": "HEALTHY"}
    registration = Registration(fleet, info).start()
    registration.update({**info, "health": "DEGRADED"})
    (record,) = list_agents(fleet)
    assert (record.node, record.version, record.gpus, record.health) == ("gpu-node-1", "0.1.0", 1, "DEGRADED")
    assert record.session == fleet.zk.client_id[0]

    done = subprocess.run(
        [sys.executable, "-m", "gpuwarden", "fleet", "ls", "--hosts", zk_ensemble.hosts,
         "--cluster", fleet.settings.cluster, "--json"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [(a["node"], a["health"]) for a in listed["agents"]] == [("gpu-node-1", "DEGRADED")]


def test_after_session_expiry_the_agent_registers_again_on_its_new_session(
    agent: Agent, zk_ensemble: Ensemble
) -> None:
    fleet = agent("gpu-node-2")
    registration = Registration(fleet, {"version": "0.1.0", "health": "HEALTHY"}).start()
    first_session = fleet.zk.client_id[0]
    states: list[str] = []
    fleet.add_listener(states.append)

    expire_session(zk_ensemble, fleet)

    wait_for(lambda: registration.registrations >= 2)
    assert "LOST" in states
    (record,) = list_agents(fleet)
    assert record.session == fleet.zk.client_id[0] != first_session
    assert record.health == "HEALTHY"


def test_the_budget_counts_nodes_grants_at_most_max_concurrent_and_frees_one_on_release(agent: Agent) -> None:
    budget = BudgetSettings(max_concurrent=2, acquire_timeout=1)
    budgets = [FleetBudget(agent(f"node-{i}", budget=budget), budget) for i in range(3)]
    first = budgets[0].acquire("worker_restart")
    second = budgets[1].acquire("gpu_quarantine")
    # A second playbook on a node that already holds its lease does not take a second slot.
    also_first = budgets[0].acquire("memory_fraction", timeout=0.5)
    assert sorted(budgets[0].holders()) == [
        "node-0 (memory_fraction, worker_restart)", "node-1 (gpu_quarantine)"
    ]  # fmt: skip
    busy = r"busy: no lease within 0\.5s \(held by node-0 \(memory_fraction, "
    with pytest.raises(BudgetDenied, match=busy):
        budgets[2].acquire("worker_restart", timeout=0.5)
    first.release()
    assert budgets[0].held, "the node keeps its lease while one of its playbooks still uses it"
    also_first.release()
    assert not budgets[0].held
    third = budgets[2].acquire("worker_restart", timeout=5)
    assert sorted(budgets[0].holders()) == ["node-1 (gpu_quarantine)", "node-2 (worker_restart)"]
    second.release()
    third.release()
    assert budgets[0].holders() == []


def test_a_percentage_budget_follows_the_number_of_registered_agents(agent: Agent) -> None:
    budget = BudgetSettings(max_concurrent=10, max_percent=50, acquire_timeout=1)
    clients = [agent(f"node-{i}", budget=budget) for i in range(4)]
    for client in clients:
        Registration(client, {"version": "0.1.0"}).start()
    budgets = [FleetBudget(c, budget) for c in clients]
    leases = [budgets[0].acquire("restart_worker"), budgets[1].acquire("restart_worker")]
    with pytest.raises(BudgetDenied, match="busy"):
        budgets[2].acquire("restart_worker", timeout=0.5)  # 50% of 4 registered = 2
    for lease in leases:
        lease.release()


def test_agents_with_a_different_budget_policy_refuse_to_share_the_lease_pool(agent: Agent) -> None:
    small, large = BudgetSettings(max_concurrent=1), BudgetSettings(max_concurrent=3)
    FleetBudget(agent("node-a"), small).acquire("restart_worker").release()
    with pytest.raises(BudgetDenied, match="policy mismatch"):
        FleetBudget(agent("node-b"), large).acquire("restart_worker", timeout=1)


def test_a_partitioned_agent_fails_closed_and_its_lease_goes_with_its_session(
    agent: Agent, zk_ensemble: Ensemble
) -> None:
    budget = BudgetSettings(max_concurrent=1, acquire_timeout=2, fail_open_playbooks=["rotate_logs"])
    leader = zk_ensemble.leader()
    assert leader is not None
    proxy = TcpProxy(("127.0.0.1", leader.client_port))
    try:
        isolated = agent("isolated", hosts=proxy.address, budget=budget)
        healthy = agent("healthy", budget=budget)
        held = FleetBudget(isolated, budget).acquire("restart_worker")
        assert not held.lost.is_set()

        proxy.cut()
        wait_for(lambda: not isolated.connected, timeout=5)
        with pytest.raises(
            BudgetDenied, match=r"restart_worker: denied, failing closed: ZooKeeper unreachable"
        ):
            FleetBudget(isolated, budget).acquire("restart_worker")
        # A playbook that is safe without coordination may be configured to go ahead, and says so.
        with pytest.raises(BudgetDenied, match="failing open") as denied:
            FleetBudget(isolated, budget).acquire("rotate_logs")
        assert denied.value.fail_open and denied.value.unreachable
        assert held.lost.is_set(), "the held lease did not signal that its session was suspended"

        # The rest of the fleet is not stuck behind the cut-off holder: its session expires, the lease
        # with it, and the budget is free again.
        granted = FleetBudget(healthy, budget).acquire("restart_worker", timeout=15)
        assert not granted.lost.is_set()
        granted.release()
    finally:
        proxy.close()


def test_a_request_waiting_for_the_budget_fails_closed_when_the_connection_drops(
    agent: Agent, zk_ensemble: Ensemble
) -> None:
    budget = BudgetSettings(max_concurrent=1, acquire_timeout=10)
    leader = zk_ensemble.leader()
    assert leader is not None
    proxy = TcpProxy(("127.0.0.1", leader.client_port))
    try:
        holder = FleetBudget(agent("holder", budget=budget), budget).acquire("restart_worker")
        waiter = agent("waiter", hosts=proxy.address, budget=budget)
        outcome: list[BaseException] = []

        def wait() -> None:
            try:
                FleetBudget(waiter, budget).acquire("restart_worker")
            except BaseException as err:  # noqa: BLE001 - handed to the test thread
                outcome.append(err)

        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.5)
        started = time.monotonic()
        proxy.cut()
        thread.join(10)
        assert time.monotonic() - started < 5, "the waiter kept waiting after its connection dropped"
        assert len(outcome) == 1 and isinstance(outcome[0], BudgetDenied)
        assert "failing closed" in str(outcome[0])
        holder.release()
    finally:
        proxy.close()


def test_one_agent_leads_and_another_takes_over_when_it_goes(agent: Agent) -> None:
    first = FleetLeader(agent("node-a")).start()
    wait_for(lambda: first.is_leader)
    second_client = agent("node-b")
    second = FleetLeader(second_client).start()
    time.sleep(0.5)
    assert first.is_leader and not second.is_leader
    assert second.leader() == "node-a"

    first.stop()
    first.fleet.stop()
    wait_for(lambda: second.is_leader)
    assert second.leader() == "node-b"
    second.stop()


def test_an_agent_that_boots_while_zookeeper_is_unreachable_joins_once_it_is_back(
    agent: Agent, zk_ensemble: Ensemble
) -> None:
    leader = zk_ensemble.leader()
    assert leader is not None
    proxy = TcpProxy(("127.0.0.1", leader.client_port))
    proxy.cut()
    observer = agent("observer")
    summary = {"version": "0.1.0", "health": "HEALTHY", "gpus": []}
    settings = FleetSettings(
        enabled=True, hosts=zk_ensemble.addresses, cluster=observer.settings.cluster, node="late-node",
        session_timeout=2, budget=BudgetSettings(acquire_timeout=1),
    )  # fmt: skip
    started = time.monotonic()
    member = FleetMember(settings, lambda: summary, hosts=proxy.address).start()
    try:
        assert time.monotonic() - started < 1, "starting the fleet member blocked on ZooKeeper"
        with pytest.raises(BudgetDenied, match="failing closed"):
            member.acquire("restart_worker")
        assert list_agents(observer) == []

        proxy.heal()
        wait_for(lambda: [a.node for a in list_agents(observer)] == ["late-node"])
        wait_for(lambda: member.is_leader)
        summary["health"] = "DEGRADED"
        member.refresh()
        wait_for(lambda: list_agents(observer)[0].health == "DEGRADED")
        member.acquire("restart_worker").release()
    finally:
        member.stop()
        proxy.close()
