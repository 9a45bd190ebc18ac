"""The fleet budget: at most N nodes (or P% of the registered agents) run a disruptive remediation at once.

Fail closed: when ZooKeeper cannot be reached (not CONNECTED, or the connection drops while waiting) the
request is denied with a reason, unless the playbook is listed in `fleet.budget.fail_open_playbooks`.
The kazoo recipe runs in a worker thread and the caller waits on a deadline, because some kazoo calls
queue until the connection returns: a partition must cost at most `acquire_timeout`, never a hang.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from kazoo.exceptions import CancelledError, KazooException, LockTimeout
from kazoo.handlers.threading import KazooTimeoutError

from gpuwarden.fleet.client import FleetClient, log
from gpuwarden.fleet.semaphore import FleetSemaphore, PolicyMismatch
from gpuwarden.fleet.settings import BudgetSettings


class BudgetDenied(Exception):
    """No lease: the message is the reason an operator reads in the audit log."""


@dataclass
class Lease:
    """A granted budget slot; release it when the remediation is done (or use it as a context manager)."""

    playbook: str
    holder: FleetSemaphore | None  # None: granted without ZooKeeper (a fail-open playbook)
    reason: str
    waited_seconds: float

    @property
    def fail_open(self) -> bool:
        return self.holder is None

    def release(self) -> None:
        """Idempotent: the semaphore forgets the lease on the first call."""
        if self.holder is not None:
            self.holder.release_nowait(wait=2.0)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class _Attempt:
    """One acquisition running in a worker thread; `abandoned` once the caller stopped waiting."""

    semaphore: FleetSemaphore
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    granted: bool = False
    error: BaseException | None = None
    abandoned: bool = False

    def run(self, timeout: float) -> None:
        try:
            self.granted = bool(self.semaphore.acquire(blocking=True, timeout=timeout))
        except BaseException as err:  # noqa: BLE001 - handed to the waiting caller
            self.error = err
        with self.lock:
            if self.abandoned and self.granted:
                self.semaphore.release_nowait()  # the caller gave up: do not keep a slot nobody uses
            self.done.set()


class FleetBudget:
    def __init__(self, fleet: FleetClient, budget: BudgetSettings) -> None:
        self.fleet = fleet
        self.budget = budget

    def acquire(self, playbook: str, timeout: float | None = None) -> Lease:
        """A lease for `playbook`, or BudgetDenied saying why (busy, policy, ZooKeeper unreachable)."""
        timeout = self.budget.acquire_timeout if timeout is None else timeout
        started = time.monotonic()
        if not self.fleet.connected:
            return self._unreachable(playbook, f"ZooKeeper session is {self.fleet.state}", started)
        attempt = _Attempt(FleetSemaphore(self.fleet, self.budget, f"{self.fleet.node}:{playbook}"))
        dropped = threading.Event()

        def on_state(state: str) -> None:  # kazoo's connection thread: flag only
            if state != "CONNECTED":
                dropped.set()
                attempt.semaphore.cancel()

        self.fleet.add_listener(on_state)
        threading.Thread(target=attempt.run, args=(timeout,), name="fleet-budget", daemon=True).start()
        deadline = started + timeout + 1.0  # the recipe enforces `timeout`; this second is our backstop
        try:
            while not attempt.done.wait(0.05) and not dropped.is_set() and time.monotonic() < deadline:
                pass
        finally:
            self.fleet.zk.remove_listener(on_state)
        with attempt.lock:
            if not attempt.done.is_set():
                attempt.abandoned = True
                attempt.semaphore.cancel()
                why = "connection dropped while waiting" if dropped.is_set() else "no answer from ZooKeeper"
                return self._unreachable(playbook, why, started)
        return self._outcome(playbook, attempt, timeout, started)

    def _outcome(self, playbook: str, attempt: _Attempt, timeout: float, started: float) -> Lease:
        err = attempt.error
        if isinstance(err, PolicyMismatch):
            raise BudgetDenied(f"{playbook}: {err}") from None
        if isinstance(err, LockTimeout | CancelledError) or (err is None and not attempt.granted):
            if not self.fleet.connected:
                return self._unreachable(
                    playbook, f"session became {self.fleet.state} while waiting", started
                )
            raise BudgetDenied(
                f"{playbook}: fleet budget busy: no lease within {timeout:g}s ({self._holders_text()})"
            )
        if err is not None:
            if isinstance(err, KazooException | KazooTimeoutError):
                return self._unreachable(playbook, f"{type(err).__name__} while waiting", started)
            raise err
        if not self.fleet.connected:
            attempt.semaphore.release_nowait()  # granted, then the connection broke: do not trust it
            return self._unreachable(playbook, "connection dropped right after the grant", started)
        return Lease(playbook, attempt.semaphore, "granted", time.monotonic() - started)

    def holders(self) -> list[str]:
        """Who holds a lease now (node:playbook), for `fleet ls` and denial messages."""
        if not self.fleet.connected:
            return []
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
