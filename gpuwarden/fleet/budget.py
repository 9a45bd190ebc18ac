"""The fleet budget: at most N nodes (or P% of the registered agents) run a disruptive remediation at once.

One lease per node, with the playbooks that use it as its data: two playbooks acting on one node count
once, because the limit is about how much of the fleet is disrupted, not how many actions run.

Fail closed: when ZooKeeper cannot be reached (not CONNECTED, or the connection drops while waiting) the
request is denied with a reason. Denial is always `BudgetDenied`; `BudgetDenied.fail_open` says that the
playbook is listed in `fleet.budget.fail_open_playbooks` and may go ahead without a lease (the engine
decides and audits it). The kazoo recipe runs under `run_with_deadline`, because some kazoo calls queue
until the connection returns: a partition must cost at most `acquire_timeout`, never a hang.

A held lease watches the session: on SUSPENDED or LOST its `lost` event is set, because ZooKeeper may
already have handed the slot to another node; a disruptive step still to come must not run.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from kazoo.client import KazooState
from kazoo.exceptions import CancelledError, KazooException, LockTimeout
from kazoo.handlers.threading import KazooTimeoutError

from gpuwarden.deadline import DeadlineExceeded, Interrupted, run_with_deadline
from gpuwarden.fleet.client import FleetClient, log
from gpuwarden.fleet.semaphore import FleetSemaphore, PolicyMismatch
from gpuwarden.fleet.settings import BudgetSettings


class BudgetDenied(Exception):
    """No lease: the message is the reason an operator reads in the audit log."""

    def __init__(self, reason: str, *, unreachable: bool = False, fail_open: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable  # ZooKeeper could not answer (as opposed to: the budget is full)
        self.fail_open = fail_open  # the playbook may run without a lease (configured, audited)


@dataclass
class Lease:
    """This node's slot in the fleet budget for one playbook; release it when the playbook is done."""

    playbook: str
    waited_seconds: float
    lost: threading.Event  # set when the session is SUSPENDED/LOST: stop before the next disruptive step
    _budget: FleetBudget
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        """Idempotent; the node's lease goes when its last playbook releases it."""
        if not self._released:
            self._released = True
            self._budget._leave(self.playbook)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lease_data(node: str, playbooks: list[str]) -> str:
    return json.dumps({"node": node, "playbooks": sorted(playbooks)}, sort_keys=True)


def describe_holder(data: str) -> str:
    """`node (playbook, ...)` from a lease's data, for `fleet ls` and denial messages."""
    try:
        info = json.loads(data)
        return f"{info['node']} ({', '.join(info['playbooks'])})"
    except (ValueError, KeyError, TypeError):
        return data  # written by an older agent: show it as it is


def _release_if(granted: bool, semaphore: FleetSemaphore) -> None:
    """Granted after the caller gave up waiting: nobody will use the slot, so give it back."""
    if granted:
        semaphore.release_nowait()


class FleetBudget:
    def __init__(self, fleet: FleetClient, budget: BudgetSettings) -> None:
        self.fleet = fleet
        self.budget = budget
        self._lock = threading.Lock()  # one acquisition at a time per node; guards the fields below
        self._semaphore: FleetSemaphore | None = None
        self._playbooks: list[str] = []
        self._lost = threading.Event()

    def acquire(self, playbook: str, timeout: float | None = None) -> Lease:
        """This node's lease, shared by its playbooks; BudgetDenied says why not (busy, policy, ZooKeeper)."""
        timeout = self.budget.acquire_timeout if timeout is None else timeout
        started = time.monotonic()
        with self._lock:
            if self._semaphore is not None and not self._lost.is_set():
                self._playbooks.append(playbook)
                self.fleet.zk.set_async(self._semaphore.create_path, self._data())
                return Lease(playbook, 0.0, self._lost, self)
            if not self.fleet.connected:
                raise self._unreachable(playbook, f"ZooKeeper session is {self.fleet.state}")
            semaphore = FleetSemaphore(self.fleet, self.budget, lease_data(self.fleet.node, [playbook]))
            granted = self._wait(semaphore, playbook, timeout)
            if not granted or not self.fleet.connected:
                if granted:  # granted, then the connection broke: do not trust it
                    semaphore.release_nowait()
                    raise self._unreachable(playbook, "connection dropped right after the grant")
                raise self._unreachable(playbook, f"session became {self.fleet.state} while waiting")
            self._semaphore, self._playbooks, self._lost = semaphore, [playbook], threading.Event()
            self.fleet.add_listener(self._on_state)
            return Lease(playbook, time.monotonic() - started, self._lost, self)

    def _wait(self, semaphore: FleetSemaphore, playbook: str, timeout: float) -> bool:
        dropped = threading.Event()

        def on_state(state: str) -> None:  # kazoo's connection thread: flag only
            if state != KazooState.CONNECTED:
                semaphore.cancel()
                dropped.set()

        self.fleet.add_listener(on_state)
        try:
            # The recipe enforces `timeout`; the extra second is the backstop for a call that queued.
            return run_with_deadline(
                lambda: bool(semaphore.acquire(blocking=True, timeout=timeout)),
                timeout + 1.0,
                name="fleet-budget",
                on_late=lambda granted: _release_if(granted, semaphore),
                interrupt=dropped,
            )
        except Interrupted:
            raise self._unreachable(playbook, "connection dropped while waiting") from None
        except DeadlineExceeded:
            semaphore.cancel()
            raise self._unreachable(playbook, "no answer from ZooKeeper") from None
        except PolicyMismatch as err:
            raise BudgetDenied(f"{playbook}: {err}") from None
        except (LockTimeout, CancelledError):
            if not self.fleet.connected:
                raise self._unreachable(playbook, "connection dropped while waiting") from None
            raise BudgetDenied(
                f"{playbook}: fleet budget busy: no lease within {timeout:g}s ({self._holders_text()})"
            ) from None
        except (KazooException, KazooTimeoutError) as err:
            raise self._unreachable(playbook, f"{type(err).__name__} while waiting") from None
        finally:
            self.fleet.zk.remove_listener(on_state)

    def _on_state(self, state: str) -> None:
        if state in (KazooState.SUSPENDED, KazooState.LOST):
            self._lost.set()

    def _data(self) -> bytes:
        return lease_data(self.fleet.node, self._playbooks).encode()

    def _leave(self, playbook: str) -> None:
        with self._lock:
            if playbook in self._playbooks:
                self._playbooks.remove(playbook)
            if self._semaphore is None:
                return
            if self._playbooks and not self._lost.is_set():
                self.fleet.zk.set_async(self._semaphore.create_path, self._data())
                return
            self.fleet.zk.remove_listener(self._on_state)
            self._semaphore.release_nowait(wait=2.0)
            self._semaphore, self._playbooks = None, []

    @property
    def held(self) -> bool:
        """Whether this node holds its fleet lease now (the `fleet_leases_held` metric)."""
        return self._semaphore is not None and not self._lost.is_set()

    def holders(self) -> list[str]:
        """Who holds a lease now, `node (playbooks)`, for `fleet ls` and denial messages."""
        if not self.fleet.connected:
            return []
        try:
            data = FleetSemaphore(self.fleet, self.budget, "").lease_holders()
        except (KazooException, KazooTimeoutError):
            return []
        return sorted(describe_holder(d) for d in data)

    def _holders_text(self) -> str:
        held = self.holders()
        return f"held by {', '.join(held)}" if held else "no holder visible"

    def _unreachable(self, playbook: str, why: str) -> BudgetDenied:
        fail_open = playbook in self.budget.fail_open_playbooks
        if fail_open:
            log.warning("fleet: %s may run without a lease (fail open): %s", playbook, why)
        return BudgetDenied(
            f"{playbook}: denied, failing {'open' if fail_open else 'closed'}: ZooKeeper unreachable ({why})",
            unreachable=True,
            fail_open=fail_open,
        )
