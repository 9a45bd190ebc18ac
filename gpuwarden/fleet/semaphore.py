"""kazoo's Semaphore recipe with a limit that can follow the registered fleet.

The recipe: a lock serialises the lease count; each lease is an ephemeral znode, so a crashed or
partitioned agent's lease goes with its session. This subclass (1) computes the limit for `max_percent`
under the recipe's own lock, (2) replaces kazoo's integer `max_leases` consistency check with a check of
the whole policy string, and (3) never blocks in clean-up: a synchronous delete queued while disconnected
waits until the connection returns, which could be never.
"""

from __future__ import annotations

import contextlib

from kazoo.exceptions import NoNodeError
from kazoo.recipe.lock import Semaphore

from gpuwarden.fleet.client import FleetClient
from gpuwarden.fleet.settings import BudgetSettings


class PolicyMismatch(Exception):
    """Another agent created the lease pool with a different budget; sharing it would break both limits."""


def effective_limit(budget: BudgetSettings, registered: int) -> int:
    """min(max_concurrent, floor(max_percent% of registered)), and never below 1 so a fleet can heal."""
    limit = budget.max_concurrent
    if budget.max_percent is not None:
        limit = min(limit, max(1, int(registered * budget.max_percent / 100)))
    return limit


class FleetSemaphore(Semaphore):
    is_acquired: bool

    def __init__(self, fleet: FleetClient, budget: BudgetSettings, identifier: str) -> None:
        super().__init__(fleet.zk, fleet.budget_path, identifier, max_leases=budget.max_concurrent)
        self.fleet = fleet
        self.budget = budget

    def _ensure_path(self) -> None:
        zk = self.client
        zk.ensure_path(self.path)
        data, _ = zk.get(self.path)
        policy = self.budget.policy().encode()
        if not data or data.isdigit():  # new, or written by a plain kazoo Semaphore
            zk.set(self.path, policy)
        elif data != policy:
            raise PolicyMismatch(
                f"fleet budget policy mismatch: ZooKeeper has {data.decode()!r}, "
                f"this agent has {policy.decode()!r}"
            )
        self.assured_path = True

    def _get_lease(self, data: bytes | None = None) -> bool:
        # Runs with the recipe's lock held, so the limit and the lease count are read consistently.
        if self.budget.max_percent is not None:
            try:
                registered = len(self.client.get_children(self.fleet.agents_path))
            except NoNodeError:
                registered = 0
            self.max_leases = effective_limit(self.budget, registered)
        return bool(super()._get_lease(data))

    def _best_effort_cleanup(self) -> None:
        self.client.delete_async(self.create_path)

    def release_nowait(self, wait: float = 0.0) -> None:
        """Delete the lease's znode, waiting at most `wait` seconds for ZooKeeper to confirm. Never blocks
        longer: if the session dies before the delete is sent, ZooKeeper removes the ephemeral node."""
        if not self.is_acquired:
            return
        self.is_acquired = False
        result = self.client.delete_async(self.create_path)
        if wait > 0 and self.fleet.connected:
            with contextlib.suppress(Exception):  # NoNodeError, ConnectionLoss, timeout: the node goes anyway
                result.get(timeout=wait)
