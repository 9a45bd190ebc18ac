"""Fleet coordination on ZooKeeper (kazoo): registration, the remediation budget, leader election."""

from gpuwarden.fleet.budget import BudgetDenied, FleetBudget, Lease
from gpuwarden.fleet.client import FleetClient, FleetUnavailable
from gpuwarden.fleet.election import FleetLeader
from gpuwarden.fleet.member import FleetMember
from gpuwarden.fleet.registration import AgentRecord, Registration, list_agents
from gpuwarden.fleet.settings import BudgetSettings, FleetSettings

__all__ = [
    "AgentRecord",
    "BudgetDenied",
    "BudgetSettings",
    "FleetBudget",
    "FleetClient",
    "FleetLeader",
    "FleetMember",
    "FleetSettings",
    "FleetUnavailable",
    "Lease",
    "Registration",
    "list_agents",
]
