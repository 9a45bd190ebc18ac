"""The fleet budget: at most N nodes (or P% of the registered agents) run a disruptive remediation at once.

Built on kazoo's Semaphore recipe (a lock serialises the lease count; leases are ephemeral znodes, so a
crashed or partitioned agent's lease goes with its session). The subclass only makes the limit follow the
registered fleet for `max_percent`, computed under the recipe's own lock, and replaces kazoo's integer
`max_leases` consistency check with a check of the whole policy string.

Fail closed: when ZooKeeper cannot be reached (not CONNECTED, or the session breaks while waiting) the
request is denied with a reason, unless the playbook is listed in `fleet.budget.fail_open_playbooks`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from kazoo.exceptions import CancelledError, KazooException, LockTimeout, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.recipe.lock import Semaphore

from gpuwarden.fleet.client import FleetClient, log
from gpuwarden.fleet.settings import BudgetSettings


class BudgetDenied(Exception):
    """No lease: the message is the reason an operator reads in the audit log."""


def effective_limit(budget: BudgetSettings, registered: int) -> int:
    """min(max_concurrent, floor(max_percent% of registered)), and never below 1 so a fleet can heal."""
    limit = budget.max_concurrent
    if budget.max_percent is not None:
        limit = min(limit, max(1, int(registered * budget.max_percent / 100)))
    return limit


class FleetSemaphore(Semaphore):
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
            raise BudgetDenied(
                f"fleet budget policy mismatch: ZooKeeper has {data.decode()!r}, ours is {policy.decode()!r}"
            )
        self.assured_path = True

    def _get_lease(self, data: bytes | None = None) -> bool:
        # Called with the recipe's lock held, so the limit and the lease count are read consistently.
        if self.budget.max_percent is not None:
            try:
                registered = len(self.client.get_children(self.fleet.agents_path))
            except NoNodeError:
                registered = 0
            self.max_leases = effective_limit(self.budget, registered)
        return bool(super()._get_lease(data))


@dataclass
class Lease:
    """A granted budget slot; release it when the remediation is done (or use it as a context manager)."""

    playbook: str
    holder: FleetSemaphore | None  # None: granted without ZooKeeper (a fail-open playbook)
    reason: str
    waited_seconds: float
    _released: bool = field(default=False, repr=False)

    @property
    def fail_open(self) -> bool:
        return self.holder is None

    def release(self) -> None:
        if self._released or self.holder is None:
            return
        self._released = True
        try:
            self.holder.release()
        except (KazooException, KazooTimeoutError) as err:
            # The lease node is ephemeral: it disappears with the session if the delete cannot be sent.
            log.warning("fleet: releasing the %s lease failed: %s", self.playbook, err)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class FleetBudget:
    def __init__(self, fleet: FleetClient, budget: BudgetSettings) -> None:
        self.fleet = fleet
        self.budget = budget
        self._lock = threading.Lock()

    def acquire(self, playbook: str, timeout: float | None = None) -> Lease:
        """A lease for `playbook`, or BudgetDenied saying why (busy, timed out, ZooKeeper unreachable)."""
        timeout = self.budget.acquire_timeout if timeout is None else timeout
        started = time.monotonic()
        if not self.fleet.connected:
            return self._unreachable(playbook, f"ZooKeeper session is {self.fleet.state}", started)
        semaphore = FleetSemaphore(self.fleet, self.budget, f"{self.fleet.node}:{playbook}")

        def on_state(state: str) -> None:
            # Stop waiting as soon as the connection drops: a lease we cannot hold is worth nothing.
            if state != "CONNECTED":
                semaphore.cancel()

        self.fleet.add_listener(on_state)
        try:
            granted = semaphore.acquire(blocking=True, timeout=timeout)
        except (LockTimeout, CancelledError):
            if not self.fleet.connected:
                return self._unreachable(
                    playbook, f"session became {self.fleet.state} while waiting", started
                )
            raise BudgetDenied(
                f"{playbook}: fleet budget busy: no lease within {timeout:g}s ({self._holders_text()})"
            ) from None
        except (KazooException, KazooTimeoutError) as err:
            return self._unreachable(playbook, f"{type(err).__name__} while waiting", started)
        finally:
            self.fleet.zk.remove_listener(on_state)
        waited = time.monotonic() - started
        if not granted:
            raise BudgetDenied(f"{playbook}: fleet budget busy after {waited:.1f}s")
        if not self.fleet.connected:
            # The session broke right after the grant: the lease may already be gone with it.
            semaphore.is_acquired = False
            return self._unreachable(playbook, "session lost right after the grant", started)
        return Lease(playbook, semaphore, "granted", waited)

    def holders(self) -> list[str]:
        """Who holds a lease now (node:playbook), for `fleet ls` and denial messages."""
        try:
            return sorted(FleetSemaphore(self.fleet, self.budget, "").lease_holders())
        except (KazooException, KazooTimeoutError):
            return []

    def _holders_text(self) -> str:
        held = self.holders()
        return f"held by {', '.join(held)}" if held else "no holder visible"

    def _unreachable(self, playbook: str, why: str, started: float) -> Lease:
        if playbook in self.budget.fail_open_playbooks:
            log.warning("fleet: %s runs without a lease (fail open): %s", playbook, why)
            return Lease(playbook, None, f"fail open: {why}", time.monotonic() - started)
        raise BudgetDenied(f"{playbook}: denied, failing closed: ZooKeeper unreachable ({why})")
