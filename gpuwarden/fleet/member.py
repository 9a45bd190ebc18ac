"""What the agent daemon runs when `fleet.enabled`: one session, the registration, the budget, the election.

Starting never blocks on ZooKeeper and never fails the agent: a node must keep reporting metrics when the
ensemble is down at boot. The session connects in the background (`start_async`), the registration is
created on the first CONNECTED and re-created after every LOST, and budget requests fail closed until
then. The daemon calls `refresh()` after a collection cycle to publish the node's health summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from gpuwarden.fleet.budget import FleetBudget, Lease
from gpuwarden.fleet.client import FleetClient
from gpuwarden.fleet.election import FleetLeader
from gpuwarden.fleet.registration import Registration
from gpuwarden.fleet.settings import FleetSettings
from gpuwarden.health import HealthResult, worst


def summarize(
    results: Iterable[HealthResult], version: str, gpus: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The registration payload: what `gpuwarden fleet ls` shows for this node. Bounded: states only,
    no reasons (a znode holds at most 1 MB and every agent's node is read by `fleet ls`)."""
    results = list(results)
    return {
        "version": version,
        "health": str(worst([r.state for r in results])),
        "components": {r.component: str(r.state) for r in results},
        "gpus": [dict(g) for g in gpus],
    }


class FleetMember:
    def __init__(
        self,
        settings: FleetSettings,
        summary: Callable[[], Mapping[str, Any]],
        *,
        hosts: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.summary = summary
        self.client = FleetClient(settings, hosts=hosts)
        self.registration = Registration(self.client, summary(), endpoint)
        self.budget = FleetBudget(self.client, settings.budget)
        self.leader = FleetLeader(self.client)

    def start(self) -> FleetMember:
        self.client.zk.start_async()
        self.registration.start()
        self.leader.start()
        return self

    def refresh(self) -> None:
        self.registration.update(self.summary())

    def acquire(self, playbook: str, timeout: float | None = None) -> Lease:
        """This node's fleet budget lease for a disruptive playbook; raises BudgetDenied with the reason."""
        return self.budget.acquire(playbook, timeout)

    @property
    def is_leader(self) -> bool:
        return self.leader.is_leader

    def stop(self) -> None:
        self.leader.stop()
        self.registration.stop()
        self.client.stop()
